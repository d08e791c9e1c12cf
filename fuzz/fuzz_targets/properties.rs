//! The `.properties` reader on arbitrary bytes (ISO-8859-1, as Java reads them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::config::properties::{decode_latin1, Properties};

fuzz_target!(|data: &[u8]| {
    let _ = Properties::parse(&decode_latin1(data));
});
