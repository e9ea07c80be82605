//! Server-side SVG charts: bars for daily series and a one-day timeline. No script, so they pass
//! the portal's Content-Security-Policy and render in any browser.

use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A bar chart of `(label, value)` pairs, e.g. hours per day.
pub fn bars(series: &[(String, f64)], unit: &str) -> String {
    let (w, h, pad) = (720.0, 180.0, 24.0);
    let max = series.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1e-9);
    let n = series.len().max(1) as f64;
    let bw = (w - 2.0 * pad) / n;
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" \
         width=\"{w}\" height=\"{h}\" role=\"img\">"
    );
    for (i, (label, v)) in series.iter().enumerate() {
        let bh = (v / max) * (h - 2.0 * pad);
        let x = pad + i as f64 * bw;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#2f6fed\">\
             <title>{}: {v:.1} {}</title></rect>",
            h - pad - bh,
            (bw - 2.0).max(1.0),
            esc(label),
            esc(unit)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{pad}\" y=\"14\" font-size=\"11\" fill=\"#667085\">max {max:.1} {}</text></svg>",
        esc(unit)
    );
    svg
}

/// One lane of a timeline: label, colour and `[start, end)` spans in ms.
pub type Lane<'a> = (&'a str, &'a str, Vec<(i64, i64, String)>);

/// A timeline of one day `[from, to)` with one lane per kind.
pub fn timeline(from: i64, to: i64, lanes: &[Lane<'_>]) -> String {
    let (w, lane_h, left) = (960.0, 22.0, 70.0);
    let h = lane_h * lanes.len() as f64 + 20.0;
    let span = (to - from).max(1) as f64;
    let x = |t: i64| left + ((t.clamp(from, to) - from) as f64 / span) * (w - left - 10.0);
    let mut svg = format!(
        "<svg class=\"chart timeline\" xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\">"
    );
    for (i, (label, colour, spans)) in lanes.iter().enumerate() {
        let y = i as f64 * lane_h + 4.0;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            y + 14.0,
            esc(label)
        );
        for (s, e, title) in spans {
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
                 <title>{}</title></rect>",
                x(*s),
                (x(*e) - x(*s)).max(0.5),
                lane_h - 6.0,
                esc(title)
            );
        }
    }
    for hour in 0..=24 {
        let t = from + (span as i64 * hour) / 24;
        if hour % 3 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#667085\">{hour}</text>",
                x(t),
                h - 2.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_scale_to_the_largest_value() {
        let svg = bars(&[("<a>".into(), 2.0), ("b".into(), 4.0)], "h");
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"));
        assert!(svg.contains("height=\"132.0\""), "the largest bar fills the height: {svg}");
        let t = timeline(0, 100, &[("Apps", "#2f6fed", vec![(0, 50, "x<y".into())])]);
        assert!(t.contains("x&lt;y"));
    }
}
