//! Plain-text output shared by the commands' reports.

/// A plain-text table: columns padded to their widest cell, two spaces apart.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: &[&str]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    let mut o = line(head);
    for r in rows {
        o += &line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    o
}

/// The UTC calendar date and the milliseconds into that day of `ms` since the epoch (Howard
/// Hinnant's `civil_from_days`): `(year, month, day, ms_in_day)`, for reports without a clock crate.
pub fn utc_parts(ms: i64) -> (i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, in_day)
}

/// The test of a `--json` output's golden file: `json` (as the command prints it) must equal the
/// file at `path` (relative to the crate) byte for byte. With `STRAIT_UPDATE_GOLDEN=1` the file is
/// written first: only for an intended change of the documented format.
#[cfg(test)]
pub(crate) fn assert_golden(path: &str, json: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("STRAIT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, json).unwrap();
    }
    let golden =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        json,
        golden,
        "{} differs (STRAIT_UPDATE_GOLDEN=1 rewrites it, for an intended format change only)",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_in_utc() {
        assert_eq!(super::utc_parts(0), (1970, 1, 1, 0));
        assert_eq!(
            super::utc_parts(1_709_210_096_789),
            (2024, 2, 29, 45_296_789)
        );
        assert_eq!(super::utc_parts(-1), (1969, 12, 31, 86_399_999));
    }

    #[test]
    fn columns_line_up() {
        let t = super::table(&["A", "LONGER"], &[vec!["wide cell".into(), "x".into()]]);
        assert_eq!(t, "A          LONGER\nwide cell  x\n");
    }
}
