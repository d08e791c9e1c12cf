//! The timeline chart of the HTML report, drawn as inline SVG: records acknowledged and
//! consumed, replication lag, the produce rate and the marks on one time axis.

use std::fmt::Write as _;

use super::html::esc;
use super::{fmt_ms, DrillReport, Mark};

impl DrillReport {
    /// The timeline chart: records acknowledged and consumed on the left axis, replication lag
    /// on the right one, vertical lines at the marks; below it, on the same time axis, the
    /// produce rate (records acknowledged per second).
    pub(super) fn svg_chart(&self) -> String {
        const W: f64 = 960.0;
        const H: f64 = 500.0;
        const LEFT: f64 = 80.0;
        const RIGHT: f64 = 80.0;
        const TOP: f64 = 70.0;
        /// The main plot's height.
        const MAIN_H: f64 = 260.0;
        /// The rate panel: its top and height.
        const RATE_TOP: f64 = TOP + MAIN_H + 16.0;
        const RATE_H: f64 = 70.0;
        let (pw, ph) = (W - LEFT - RIGHT, MAIN_H);

        let t_max = self
            .timeline
            .iter()
            .map(|s| s.t_ms)
            .chain(self.marks.iter().map(|m| m.t_ms))
            .chain([self.times.finished_at_ms - self.times.started_at_ms, 1])
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let count_max = nice_ceil(
            self.timeline
                .iter()
                .map(|s| s.acked_total.max(s.consumed_total))
                .max()
                .unwrap_or(0) as f64,
        );
        let lag_max = nice_ceil(
            self.timeline
                .iter()
                .filter_map(|s| s.replication_lag_records)
                .max()
                .unwrap_or(0)
                .max(0) as f64,
        );
        let rate_max = nice_ceil(
            self.timeline
                .iter()
                .map(|s| s.produce_rate)
                .fold(0.0, f64::max),
        );
        let x = |t: i64| LEFT + (t.max(0) as f64 / t_max).min(1.0) * pw;
        let y_rate = |v: f64| RATE_TOP + RATE_H - (v.max(0.0) / rate_max).min(1.0) * RATE_H;
        let y_count = |v: f64| TOP + ph - (v / count_max).min(1.0) * ph;
        let y_lag = |v: f64| TOP + ph - (v.max(0.0) / lag_max).min(1.0) * ph;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"drill timeline\">"
        );
        let _ = writeln!(
            svg,
            "<rect class=\"plot\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\"/>"
        );
        for i in 0..=4 {
            let f = i as f64 / 4.0;
            let yy = TOP + ph - f * ph;
            let _ = writeln!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/>",
                LEFT + pw
            );
            let _ = writeln!(
                svg,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT - 6.0,
                yy + 4.0,
                fmt_count(f * count_max)
            );
            let _ = writeln!(
                svg,
                "<text class=\"axis lag\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                LEFT + pw + 6.0,
                yy + 4.0,
                fmt_count(f * lag_max)
            );
            let t = (f * t_max).round() as i64;
            let _ = writeln!(
                svg,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x(t),
                RATE_TOP + RATE_H + 18.0,
                esc(&fmt_ms(t))
            );
        }
        let _ = writeln!(
            svg,
            "<rect class=\"plot\" x=\"{LEFT}\" y=\"{RATE_TOP}\" width=\"{pw}\" height=\"{RATE_H}\"/>"
        );
        for i in 0..=2 {
            let f = i as f64 / 2.0;
            let yy = RATE_TOP + RATE_H - f * RATE_H;
            let _ = writeln!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/>",
                LEFT + pw
            );
            let _ = writeln!(
                svg,
                "<text class=\"axis rate\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}/s</text>",
                LEFT - 6.0,
                yy + 4.0,
                fmt_count(f * rate_max)
            );
        }
        let _ = writeln!(
            svg,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time since start</text>",
            LEFT + pw / 2.0,
            RATE_TOP + RATE_H + 34.0
        );
        let _ = writeln!(
            svg,
            "<text class=\"axis\" x=\"{LEFT}\" y=\"{:.1}\" text-anchor=\"middle\">records</text>",
            TOP - 8.0
        );
        let _ = writeln!(
            svg,
            "<text class=\"axis lag\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">lag (records)</text>",
            LEFT + pw,
            TOP - 8.0
        );

        let polyline = |svg: &mut String, class: &str, points: &[(f64, f64)]| {
            if points.is_empty() {
                return;
            }
            let pts: Vec<String> = points
                .iter()
                .map(|(a, b)| format!("{a:.1},{b:.1}"))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline class=\"{class}\" points=\"{}\"/>",
                pts.join(" ")
            );
        };
        let acked: Vec<(f64, f64)> = self
            .timeline
            .iter()
            .map(|s| (x(s.t_ms), y_count(s.acked_total as f64)))
            .collect();
        let consumed: Vec<(f64, f64)> = self
            .timeline
            .iter()
            .map(|s| (x(s.t_ms), y_count(s.consumed_total as f64)))
            .collect();
        polyline(&mut svg, "acked", &acked);
        polyline(&mut svg, "consumed", &consumed);
        let rate: Vec<(f64, f64)> = self
            .timeline
            .iter()
            .map(|s| (x(s.t_ms), y_rate(s.produce_rate)))
            .collect();
        polyline(&mut svg, "rate", &rate);
        // The lag is unknown while the primary is down: one line per stretch where it was known.
        for run in self.timeline.split(|s| s.replication_lag_records.is_none()) {
            let pts: Vec<(f64, f64)> = run
                .iter()
                .filter_map(|s| {
                    s.replication_lag_records
                        .map(|l| (x(s.t_ms), y_lag(l as f64)))
                })
                .collect();
            polyline(&mut svg, "lag", &pts);
        }
        if self.timeline.is_empty() {
            let _ = writeln!(
                svg,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no samples were taken</text>",
                LEFT + pw / 2.0,
                TOP + ph / 2.0
            );
        }

        let mut marks: Vec<&Mark> = self.marks.iter().collect();
        marks.sort_by_key(|m| m.t_ms);
        // Labels go in the first of four rows above the plot where they overlap no other
        // label (marks close in time, such as failover done and the first record consumed,
        // would otherwise print over each other); 11 px text is about 6.2 px a character.
        let mut taken: Vec<Vec<(f64, f64)>> = vec![Vec::new(); 4];
        for m in &marks {
            let mx = x(m.t_ms);
            let text_w =
                (m.label.chars().count() + fmt_ms(m.t_ms).chars().count() + 4) as f64 * 6.2;
            let anchor = if mx + 3.0 + text_w > W {
                "end"
            } else {
                "start"
            };
            let extent = if anchor == "end" {
                (mx - 3.0 - text_w, mx)
            } else {
                (mx, mx + 3.0 + text_w)
            };
            let row = (0..taken.len())
                .find(|&r| {
                    taken[r]
                        .iter()
                        .all(|&(a, b)| extent.1 + 6.0 < a || b + 6.0 < extent.0)
                })
                .unwrap_or(taken.len() - 1);
            taken[row].push(extent);
            let label_y = 14.0 + row as f64 * 14.0;
            let kind = serde_json::to_value(m.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                svg,
                "<line class=\"mark {kind}\" x1=\"{mx:.1}\" y1=\"{:.1}\" x2=\"{mx:.1}\" y2=\"{:.1}\"/>",
                label_y + 4.0,
                TOP + ph
            );
            let _ = writeln!(
                svg,
                "<line class=\"mark-through {kind}\" x1=\"{mx:.1}\" y1=\"{RATE_TOP:.1}\" x2=\"{mx:.1}\" y2=\"{:.1}\"/>",
                RATE_TOP + RATE_H
            );
            let _ = writeln!(
                svg,
                "<text class=\"mark-label {kind}\" x=\"{:.1}\" y=\"{label_y:.1}\" text-anchor=\"{anchor}\">{} (+{})</text>",
                if anchor == "end" { mx - 3.0 } else { mx + 3.0 },
                esc(&m.label),
                esc(&fmt_ms(m.t_ms))
            );
        }

        let legend = [
            ("acked", "acknowledged (produced)"),
            ("consumed", "consumed"),
            ("lag", "replication lag (right axis)"),
            ("rate", "produce rate (lower panel)"),
        ];
        for (i, (class, label)) in legend.iter().enumerate() {
            let lx = LEFT + i as f64 * 200.0;
            let ly = H - 24.0;
            let _ = writeln!(
                svg,
                "<line class=\"legend {class}\" x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\"/><text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
                lx + 24.0,
                lx + 30.0,
                ly + 4.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// An axis label: 1500 -> "1.5k".
pub(super) fn fmt_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

pub(super) fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v` (at least 1): a round axis top.
pub(super) fn nice_ceil(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}
