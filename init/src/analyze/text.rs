//! How durations and times read in the text reports (as systemd-analyze
//! writes them).

/// A duration, to the millisecond as systemd-analyze writes it:
/// `500us`, `771ms`, `2.651s`, `1min 5.337s`, `1h 2min 3.004s`.
/// Truncated, not rounded.
pub(super) fn span(us: u64) -> String {
    if us < 1_000 {
        return format!("{us}us");
    }
    if us < 1_000_000 {
        return format!("{}ms", us / 1_000);
    }
    let ms = (us / 1_000) % 1_000;
    with_minutes(us, &format!("{ms:03}"))
}

/// A duration to the tenth of a second, as critical-chain's `+` shows
/// it: `186ms`, `7.1s`, `1min 5.3s`.
pub(super) fn coarse_span(us: u64) -> String {
    if us < 1_000_000 {
        return span(us);
    }
    let tenths = (us / 100_000) % 10;
    with_minutes(us, &tenths.to_string())
}

/// `[Nh ][Nmin ]S.FRACs` for at least one second.
fn with_minutes(us: u64, fraction: &str) -> String {
    let total_s = us / 1_000_000;
    let (h, min, s) = (total_s / 3_600, (total_s / 60) % 60, total_s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h "));
    }
    if h > 0 || min > 0 {
        out.push_str(&format!("{min}min "));
    }
    out.push_str(&format!("{s}.{fraction}s"));
    out
}

/// A point in time since kernel start, in seconds to the millisecond:
/// `19.390s`.
pub(super) fn seconds(us: u64) -> String {
    format!("{}.{:03}s", us / 1_000_000, (us / 1_000) % 1_000)
}

/// One row of a report: a duration right-aligned in the first column, a
/// name left-aligned in the second, and the rest.
pub(super) type Row = (String, String, String);

/// The widths of the first two columns over `rows`.
pub(super) fn widths<'a>(rows: impl IntoIterator<Item = &'a Row>) -> (usize, usize) {
    rows.into_iter().fold((0, 0), |(d, n), r| {
        (d.max(r.0.chars().count()), n.max(r.1.chars().count()))
    })
}

/// `row` as `INDENT DURATION NAME REST` in columns `widths` wide, with no
/// trailing spaces, and a newline.
pub(super) fn line(indent: &str, (width, names): (usize, usize), row: &Row) -> String {
    let (duration, name, rest) = row;
    let line = format!("{indent}{duration:>width$} {name:<names$} {rest}");
    let mut line = line.trim_end().to_owned();
    line.push('\n');
    line
}

/// Rows as [`line`]s, aligned among themselves.
pub(super) fn table(rows: &[Row], indent: &str) -> String {
    let widths = widths(rows);
    rows.iter().map(|r| line(indent, widths, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_systemd_analyze() {
        assert_eq!(span(0), "0us");
        assert_eq!(span(999), "999us");
        assert_eq!(span(3_100), "3ms");
        assert_eq!(span(771_000), "771ms");
        assert_eq!(span(2_651_000), "2.651s");
        assert_eq!(span(12_622_999), "12.622s");
        assert_eq!(span(65_337_000), "1min 5.337s");
        assert_eq!(span(3_723_004_000), "1h 2min 3.004s");
        assert_eq!(span(3_600_000_000), "1h 0min 0.000s");
        assert_eq!(span(u64::MAX), "5124095576h 1min 49.551s");
        assert_eq!(coarse_span(7_123_000), "7.1s");
        assert_eq!(coarse_span(186_000), "186ms");
        assert_eq!(coarse_span(65_337_000), "1min 5.3s");
        assert_eq!(seconds(19_390_000), "19.390s");
        assert_eq!(seconds(5_000), "0.005s");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = [
            ("7.123s".into(), "control".into(), "@19.694s".into()),
            ("240ms".into(), "web".into(), String::new()),
        ];
        assert_eq!(
            table(&rows, "  "),
            "  7.123s control @19.694s\n   240ms web\n"
        );
    }
}
