//! MM2 internal record decoders (offset syncs, checkpoints, heartbeats) and strait's offset index
//! records (version-0 runs, blocks, floors, tombstones). Input: one byte `n`, then the record key (`n` bytes, or everything left if fewer), then
//! the record value (the rest). Every decoder gets the same key and value; whatever decodes must
//! encode back to a record that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::wire::{Checkpoint, Heartbeat, IndexRecord, IndexRun, OffsetSync};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (key, value) = rest.split_at((n as usize).min(rest.len()));

    if let Ok(x) = OffsetSync::decode(key, value) {
        assert_eq!(OffsetSync::decode(&x.key(), &x.value()), Ok(x));
    }
    if let Ok(x) = Checkpoint::decode(key, value) {
        assert_eq!(Checkpoint::decode(&x.key(), &x.value()), Ok(x));
    }
    if let Ok(x) = Heartbeat::decode(key, value) {
        assert_eq!(Heartbeat::decode(&x.key(), &x.value()), Ok(x));
    }
    if let Ok(x) = IndexRun::decode(key, value) {
        assert_eq!(IndexRun::decode(&x.key(), &x.value()), Ok(x));
    }
    if let Ok(x) = IndexRecord::decode(key, value) {
        let (k, v) = match &x {
            IndexRecord::Run(r) => (r.key(), r.value()),
            IndexRecord::Block(b) => (b.key(), b.value()),
            IndexRecord::Floor(f) => (f.key(), f.value()),
            IndexRecord::Deleted(k) => (k.encode(), Vec::new()),
        };
        assert_eq!(IndexRecord::decode(&k, &v), Ok(x));
    }
});
