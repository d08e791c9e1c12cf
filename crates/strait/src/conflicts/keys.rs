//! Keys as the conflict jobs hold them in memory: a 128-bit digest of the bytes. The bytes are
//! needed only to write a record (a winner, a conflict), and the record in hand has them; held
//! per key, a digest is 16 bytes in the table entry where the bytes took 24 and a heap
//! allocation of their own (BENCHMARKS.md, "Conflict topics").

/// A key's digest.
pub(crate) type KeyDigest = u128;

/// Digests keys for one session: SipHash-1-3 under a key drawn at random when the session
/// starts, twice, told apart by a prefix byte. Never written anywhere (a restart reads the key
/// bytes back from the topics), so it need not be the same in another process; keyed, so that
/// keys cannot be chosen to collide. Two keys of 10^9 share a digest with a chance of about
/// 10^-21.
pub(crate) struct KeyDigester(std::hash::RandomState);

impl KeyDigester {
    /// A digester with a key of its own.
    pub(crate) fn new() -> Self {
        Self(std::hash::RandomState::new())
    }

    /// The digest of `key`.
    pub(crate) fn digest(&self, key: &[u8]) -> KeyDigest {
        use std::hash::BuildHasher;
        let (hi, lo) = (self.0.hash_one((0u8, key)), self.0.hash_one((1u8, key)));
        (u128::from(hi) << 64) | u128::from(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_digest_is_the_same_for_the_same_bytes_and_differs_otherwise() {
        let keys = KeyDigester::new();
        assert_eq!(keys.digest(b"order-123"), keys.digest(b"order-123"));
        assert_ne!(keys.digest(b"order-123"), keys.digest(b"order-124"));
        assert_ne!(keys.digest(b""), keys.digest(b"\0"));
        // Two independent halves, not one 64-bit hash twice.
        let d = keys.digest(b"order-123");
        assert_ne!(d >> 64, d & u128::from(u64::MAX));
        // 100,000 keys, 100,000 digests.
        let all: std::collections::HashSet<KeyDigest> = (0..100_000)
            .map(|i| keys.digest(format!("key-{i:08}").as_bytes()))
            .collect();
        assert_eq!(all.len(), 100_000);
    }
}
