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

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let t = super::table(&["A", "LONGER"], &[vec!["wide cell".into(), "x".into()]]);
        assert_eq!(t, "A          LONGER\nwide cell  x\n");
    }
}
