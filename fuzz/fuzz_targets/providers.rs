//! Config-provider declarations and `${provider:path:key}` references on arbitrary properties
//! text. Only the environment provider is resolved (no file I/O on fuzzer-chosen paths).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::config::properties::{decode_latin1, Properties};
use strait::config::providers::{references, ProviderKind, Providers, Resolver};

fuzz_target!(|data: &[u8]| {
    let text = decode_latin1(data);
    for r in references(&text) {
        assert!(r.start < r.end && r.end <= text.len());
    }
    let Ok(props) = Properties::parse(&text) else {
        return;
    };
    let providers = Providers::declare(|k| props.get(k));
    if providers
        .declared
        .values()
        .any(|p| matches!(p.kind, Some(ProviderKind::File | ProviderKind::Dir)))
    {
        return;
    }
    let mut resolver = Resolver::new(&providers);
    for (_, entry) in props.iter() {
        let _ = resolver.resolve(&entry.value);
    }
});
