//! The report's charts, drawn with `plotters` into SVG strings (`SVGBackend::with_string`) that
//! are placed inline in the page. Text is emitted as SVG `<text>` and laid out by the browser;
//! plotters' own text measurement (used for label areas) is its estimate without a font file.

use plotters::coord::Shift;
use plotters::prelude::*;

/// One horizontal bar.
#[derive(Clone, Debug)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Text written after the bar (the exact count or figure).
    pub value_text: String,
    pub colour: RGBColor,
    /// Drawn with a thick dark outline (the `exists` outcome).
    pub marked: bool,
}

/// Blue for an ordinary outcome / bar.
pub const PLAIN: RGBColor = RGBColor(0x5b, 0x8d, 0xc9);
/// Amber for the `exists` outcome the model allows.
pub const EXISTS_ALLOWED: RGBColor = RGBColor(0xf2, 0xa9, 0x00);
/// Red for an outcome the model forbids.
pub const FORBIDDEN: RGBColor = RGBColor(0xd3, 0x2f, 0x2f);

const LABEL_PX_PER_CHAR: u32 = 7;
const ROW_PX: u32 = 22;

fn draw(area: &DrawingArea<SVGBackend, Shift>, bars: &[Bar], x_desc: &str) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let max = if max > 0.0 { max * 1.25 } else { 1.0 };
    let label_chars = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(4) as u32;
    let n = bars.len().max(1) as u32;
    let mut chart = ChartBuilder::on(area)
        .margin(6)
        .x_label_area_size(28)
        .y_label_area_size(label_chars * LABEL_PX_PER_CHAR + 10)
        .build_cartesian_2d(0.0..max, (0..n).into_segmented())
        .map_err(e)?;
    // A non-zero count is drawn at least this long, so that a rare outcome (often the one the
    // test is about) stays visible next to one seen 10,000 times; its exact count is written
    // after it.
    let min_len = max / 80.0;
    let len = |v: f64| if v > 0.0 { v.max(min_len) } else { 0.0 };
    // plotters' y axis grows upwards: the first bar goes in the top row, so it reads top down.
    let n_bars = bars.len() as u32;
    let row = |i: usize| n_bars - 1 - i as u32;
    let labels: Vec<String> = bars.iter().rev().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(4)
        .x_desc(x_desc)
        .y_labels(bars.len().max(1))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .x_label_formatter(&|v| short_number(*v))
        .label_style(("monospace", 12))
        .axis_desc_style(("sans-serif", 12))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let i = row(i);
            let mut r = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (len(b.value), SegmentValue::Exact(i + 1)),
                ],
                b.colour.filled(),
            );
            r.set_margin(3, 3, 0, 0);
            r
        }))
        .map_err(e)?;
    chart
        .draw_series(
            bars.iter()
                .enumerate()
                .filter(|(_, b)| b.marked)
                .map(|(i, b)| {
                    let i = row(i);
                    let mut r = Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(i)),
                            (len(b.value).max(min_len), SegmentValue::Exact(i + 1)),
                        ],
                        BLACK.stroke_width(2),
                    );
                    r.set_margin(2, 2, 0, 0);
                    r
                }),
        )
        .map_err(e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            Text::new(
                b.value_text.clone(),
                (len(b.value) + max * 0.01, SegmentValue::CenterOf(row(i))),
                ("sans-serif", 12).into_font().color(&BLACK),
            )
        }))
        .map_err(e)?;
    area.present().map_err(e)?;
    Ok(())
}

/// A horizontal bar chart as an SVG document, `width` pixels wide, one row per bar.
pub fn bar_chart(bars: &[Bar], width: u32, x_desc: &str) -> Result<String, String> {
    let height = bars.len().max(1) as u32 * ROW_PX + 50;
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw(&area, bars, x_desc)?;
    }
    Ok(svg)
}

/// `12`, `1.2k`, `3.4M`: short axis labels.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_chart_is_an_svg_with_every_label() {
        let bars = vec![
            Bar {
                label: "0:X0=0; 1:X0=0;".into(),
                value: 19.0,
                value_text: "19".into(),
                colour: FORBIDDEN,
                marked: true,
            },
            Bar {
                label: "0:X0=1; 1:X0=0;".into(),
                value: 63000.0,
                value_text: "63000".into(),
                colour: PLAIN,
                marked: false,
            },
        ];
        let svg = bar_chart(&bars, 400, "count").unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(
            svg.contains("0:X0=0; 1:X0=0;") && svg.contains("63000"),
            "{svg}"
        );
        assert!(svg.contains("#D32F2F") || svg.contains("#d32f2f"), "{svg}");
        // The outline of the marked (exists) bar is on the same row as that bar (the first
        // bar, drawn in the top row).
        let rect_y = |pat: &str| -> Vec<i64> {
            svg.split("<rect ")
                .skip(1)
                .filter(|r| r.split('>').next().unwrap_or("").contains(pat))
                .map(|r| {
                    let y = &r[r.find(" y=\"").unwrap() + 4..];
                    y[..y.find('"').unwrap()].parse().unwrap()
                })
                .collect()
        };
        let red = rect_y("fill=\"#D32F2F\"");
        let outline = rect_y("fill=\"none\" stroke=\"#000000\"");
        let blue = rect_y("fill=\"#5B8DC9\"");
        assert_eq!((red.len(), outline.len(), blue.len()), (1, 1, 1), "{svg}");
        assert!((red[0] - outline[0]).abs() <= 2, "{red:?} {outline:?}");
        assert!(red[0] < blue[0], "first bar on top: {red:?} {blue:?}");
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(25000.0), "25k");
        assert_eq!(short_number(7.0), "7");
    }
}
