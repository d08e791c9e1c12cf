//! The whole MM2 config loader (properties, providers, JAAS, client mapping, filters) on
//! arbitrary bytes. Slow per input (regex compilation), so a target of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::config::properties::decode_latin1;
use strait::config::{Config, LocalFiles};

fuzz_target!(|data: &[u8]| {
    let _ = Config::parse_with(&decode_latin1(data), "fuzz.properties", LocalFiles::MayBeMissing);
});
