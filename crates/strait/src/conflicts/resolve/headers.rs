//! The headers strait writes on view records (where the winning version was read), and the
//! digest of a value that tells versions apart.

/// The header naming the region a view record's version was written in.
pub(crate) const ORIGIN_HEADER: &str = "strait.origin";
/// The header holding the partition the version was read from in this region.
pub(crate) const PARTITION_HEADER: &str = "strait.partition";
/// The header holding the offset the version was read at in this region.
pub(crate) const OFFSET_HEADER: &str = "strait.offset";

/// A digest of a value, the same in every process and release (FNV-1a, 64 bits; a tombstone
/// and an empty value differ).
pub(crate) fn digest(value: Option<&[u8]>) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let step = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(PRIME);
    match value {
        None => step(OFFSET_BASIS, 0),
        Some(v) => v.iter().fold(step(OFFSET_BASIS, 1), |h, &b| step(h, b)),
    }
}

/// Whether a header is one of those strait writes on view records (an input's own are dropped,
/// so that each view record has one of each).
pub(super) fn is_view_header(key: &str) -> bool {
    matches!(key, ORIGIN_HEADER | PARTITION_HEADER | OFFSET_HEADER)
}

/// Where a view record's version was read: (region alias, partition, offset), from its headers
/// (the last of each name). `None` for a record strait did not write.
pub(super) fn parse_view_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Option<(String, i32, i64)> {
    let (mut origin, mut partition, mut offset) = (None, None, None);
    for (k, v) in headers {
        let text = || v.and_then(|v| std::str::from_utf8(v).ok());
        match k {
            ORIGIN_HEADER => origin = text().map(str::to_string),
            PARTITION_HEADER => partition = text().and_then(|s| s.parse().ok()),
            OFFSET_HEADER => offset = text().and_then(|s| s.parse().ok()),
            _ => {}
        }
    }
    Some((origin?, partition?, offset?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_fixed_and_tell_a_tombstone_from_an_empty_value() {
        // FNV-1a of [1, b'a'] and of [0]: the same in every process and release.
        assert_eq!(digest(Some(b"a")), digest_reference(&[1, b'a']));
        assert_eq!(digest(None), digest_reference(&[0]));
        assert_eq!(digest(Some(b"shipped")), 0xbeac73fff1f8d063);
        assert_ne!(digest(None), digest(Some(b"")));
        assert_ne!(digest(Some(b"ab")), digest(Some(b"ba")));
    }

    /// FNV-1a as published (http://www.isthe.com/chongo/tech/comp/fnv/).
    fn digest_reference(bytes: &[u8]) -> u64 {
        let mut h: u64 = 14_695_981_039_346_656_037;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(1_099_511_628_211);
        }
        h
    }

    #[test]
    fn view_headers_are_read_back_last_one_winning() {
        let h = |k: &'static str, v: &'static str| (k, Some(v.as_bytes()));
        assert_eq!(
            parse_view_headers([
                h("trace", "x"),
                h(ORIGIN_HEADER, "east"),
                h(PARTITION_HEADER, "2"),
                h(OFFSET_HEADER, "41"),
                h(OFFSET_HEADER, "42"),
            ]),
            Some(("east".into(), 2, 42))
        );
        assert_eq!(
            parse_view_headers([h(ORIGIN_HEADER, "east"), h(PARTITION_HEADER, "2")]),
            None
        );
        assert_eq!(
            parse_view_headers([
                h(ORIGIN_HEADER, "east"),
                h(PARTITION_HEADER, "x"),
                h(OFFSET_HEADER, "1")
            ]),
            None
        );
        assert!(is_view_header(ORIGIN_HEADER) && !is_view_header("trace"));
    }
}
