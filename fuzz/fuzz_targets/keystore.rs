//! Key and trust store readers on arbitrary bytes: JKS (hand-parsed), PKCS#12 and PEM (through
//! OpenSSL). The first byte picks the declared type and whether passwords are given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::config::stores::{read_keystore, read_truststore, StoreType};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let ty = match sel % 3 {
        0 => StoreType::Jks,
        1 => StoreType::Pkcs12,
        _ => StoreType::Pem,
    };
    let pw = (sel & 0x04 != 0).then_some("storepass1");
    let key_pw = (sel & 0x08 != 0).then_some("keypass22");
    let _ = read_truststore(bytes, ty, pw);
    let _ = read_keystore(bytes, ty, pw, key_pw);
});
