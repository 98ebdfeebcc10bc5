//! Charts drawn on the server as SVG: no chart library, no script, nothing the CSP forbids
//! (colours come from classes in `app.css`). Every chart has a text alternative beside it.

use std::fmt::Write;

use docket_projections::flow::FlowDay;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 40.0;
/// Room for the last date's label.
const RIGHT: f64 = 24.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

/// The smallest round number at least `most` (1, 2 or 5 times a power of ten).
fn ceiling(most: i64) -> i64 {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if step * factor >= most.max(1) {
                return step * factor;
            }
        }
        step *= 10;
    }
}

struct Frame {
    top: i64,
    slots: usize,
}

impl Frame {
    fn y(&self, value: i64) -> f64 {
        let plot = HEIGHT - BOTTOM - TOP;
        HEIGHT - BOTTOM - plot * value as f64 / self.top as f64
    }

    fn slot(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / self.slots.max(1) as f64
    }

    fn x(&self, index: usize) -> f64 {
        LEFT + self.slot() * (index as f64 + 0.5)
    }

    /// The axis lines and labels: 0, half and top on the left, a date every week below.
    fn axes(&self, out: &mut String, days: &[FlowDay]) {
        for value in [0, self.top / 2, self.top] {
            let y = self.y(value);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{value}</text>"#,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0
            );
        }
        for (index, day) in days.iter().enumerate().rev().step_by(7) {
            let _ = write!(
                out,
                r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                self.x(index),
                HEIGHT - 6.0,
                day.day.format("%m-%d")
            );
        }
    }
}

fn open_svg(label: &str) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" focusable="false">"#
    )
}

/// The backlog at the end of each day, as a line over a shaded area.
pub fn backlog(days: &[FlowDay]) -> String {
    let frame = Frame {
        top: ceiling(days.iter().map(|d| d.backlog).max().unwrap_or(0)),
        slots: days.len(),
    };
    let mut out = open_svg("Backlog at the end of each day");
    frame.axes(&mut out, days);
    let points: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{:.1},{:.1}", frame.x(i), frame.y(d.backlog.max(0))))
        .collect();
    if let Some(last) = days.len().checked_sub(1) {
        let base = frame.y(0);
        let _ = write!(
            out,
            r#"<polygon class="area" points="{:.1},{base:.1} {} {:.1},{base:.1}"/><polyline class="line" points="{}"/>"#,
            frame.x(0),
            points.join(" "),
            frame.x(last),
            points.join(" ")
        );
    }
    out.push_str("</svg>");
    out
}

/// Tickets opened and finished each day, side by side.
pub fn created_and_resolved(days: &[FlowDay]) -> String {
    let frame = Frame {
        top: ceiling(
            days.iter()
                .map(|d| d.opened.max(d.finished))
                .max()
                .unwrap_or(0),
        ),
        slots: days.len(),
    };
    let mut out = open_svg("Tickets created and resolved each day");
    frame.axes(&mut out, days);
    let bar = (frame.slot() * 0.4).max(1.0);
    for (index, day) in days.iter().enumerate() {
        let centre = frame.x(index);
        for (class, value, x) in [
            ("opened", day.opened, centre - bar),
            ("finished", day.finished, centre),
        ] {
            if value > 0 {
                let y = frame.y(value);
                let _ = write!(
                    out,
                    r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{:.1}"/>"#,
                    frame.y(0) - y
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(n: u32, opened: i64, finished: i64, backlog: i64) -> FlowDay {
        FlowDay {
            day: NaiveDate::from_ymd_opt(2026, 11, n).unwrap_or_default(),
            opened,
            finished,
            reopened: 0,
            backlog,
        }
    }

    #[test]
    fn the_scale_rounds_up_to_a_round_number() {
        assert_eq!(ceiling(0), 1);
        assert_eq!(ceiling(1), 1);
        assert_eq!(ceiling(3), 5);
        assert_eq!(ceiling(7), 10);
        assert_eq!(ceiling(11), 20);
        assert_eq!(ceiling(4_100), 5_000);
    }

    #[test]
    fn each_day_with_tickets_has_its_bars_and_quiet_days_none() {
        let days = [day(1, 3, 0, 3), day(2, 0, 0, 3), day(3, 1, 2, 2)];
        let svg = created_and_resolved(&days);
        assert_eq!(svg.matches(r#"class="opened""#).count(), 2);
        assert_eq!(svg.matches(r#"class="finished""#).count(), 1);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn the_backlog_line_has_a_point_per_day_and_the_highest_reaches_the_top() {
        let days = [day(1, 0, 0, 4), day(2, 0, 0, 5), day(3, 0, 0, 2)];
        let svg = backlog(&days);
        let line = svg
            .split(r#"<polyline class="line" points=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        assert_eq!(line.split(' ').count(), 3);
        // 5 is the top of the scale: its point is at the top of the plot.
        assert!(line.contains(&format!(",{TOP:.1}")), "{line}");
    }
}
