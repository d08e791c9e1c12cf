//! `sasl.jaas.config` value parser on arbitrary UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = strait::config::client_props::parse_jaas(text);
    }
});
