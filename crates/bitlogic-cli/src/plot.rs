//! Training curves as a PNG: loss per epoch on the left, train and test accuracy (in percent)
//! on the right.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (the `dejavu` crate), registered with
//! plotters' `ab_glyph` renderer, so plotting works on machines without fontconfig or any
//! installed fonts.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

const SIZE: (u32, u32) = (1000, 420);
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const TEST_COLOR: RGBColor = RGBColor(214, 39, 40);
const FONT: &str = "sans-serif";

/// One epoch's numbers. Accuracies are fractions in `[0, 1]`; they are drawn as percent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// `None` when no test set was evaluated; the test line is then left out.
    pub test_accuracy: Option<f64>,
}

/// Writes the two-panel curves PNG (1000x420) to `path`.
pub fn write_curves(path: &Path, points: &[CurvePoint], title: &str) -> anyhow::Result<()> {
    if points.is_empty() {
        bail!(
            "cannot plot training curves for {}: no epochs were recorded",
            path.display()
        );
    }
    register_fonts()?;
    draw(path, points, title).with_context(|| format!("writing plot {}", path.display()))
}

/// Registers the embedded font once per process; plotters keeps it in a global table.
fn register_fonts() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            for (style, bytes) in [
                (FontStyle::Normal, dejavu::sans::regular()),
                (FontStyle::Bold, dejavu::sans::bold()),
            ] {
                register_font(FONT, style, bytes)
                    .map_err(|_| format!("embedded font {} is not a valid TTF", style.as_str()))?;
            }
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// One plotted line: only its finite points, so a diverged epoch leaves a gap, not a spike
/// to infinity.
struct Line {
    label: &'static str,
    color: RGBColor,
    data: Vec<(i64, f64)>,
}

impl Line {
    fn new(
        label: &'static str,
        color: RGBColor,
        points: &[CurvePoint],
        value: impl Fn(&CurvePoint) -> Option<f64>,
    ) -> Self {
        let data = points
            .iter()
            .filter_map(|p| Some((p.epoch as i64, value(p)?)))
            .filter(|(_, y)| y.is_finite())
            .collect();
        Self { label, color, data }
    }
}

fn draw(path: &Path, points: &[CurvePoint], title: &str) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(title, (FONT, 22).into_font().style(FontStyle::Bold))?;
    let panels = body.split_evenly((1, 2));
    let epochs = epoch_range(points);

    let loss = [Line::new("train", TRAIN_COLOR, points, |p| {
        Some(p.train_loss)
    })];
    let loss_range = padded(loss[0].data.iter().map(|p| p.1), Some(0.0), None);
    panel(
        &panels[0],
        "loss",
        "train loss",
        epochs.clone(),
        loss_range,
        &loss,
        false,
    )?;

    let percent = |v: f64| 100.0 * v;
    let mut acc = vec![Line::new("train", TRAIN_COLOR, points, |p| {
        Some(percent(p.train_accuracy))
    })];
    let test = Line::new("test", TEST_COLOR, points, |p| p.test_accuracy.map(percent));
    if !test.data.is_empty() {
        acc.push(test);
    }
    let acc_values = acc.iter().flat_map(|l| l.data.iter().map(|p| p.1));
    let acc_range = padded(acc_values, Some(0.0), Some(100.0));
    panel(
        &panels[1],
        "accuracy",
        "accuracy (%)",
        epochs,
        acc_range,
        &acc,
        true,
    )?;

    root.present()?;
    Ok(())
}

/// One chart: lines with markers, and optionally a legend naming them.
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    y_desc: &str,
    x: Range<i64>,
    y: Range<f64>,
    lines: &[Line],
    legend: bool,
) -> anyhow::Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .x_labels(10)
        .y_labels(8)
        .y_label_formatter(&|v| format_tick(*v))
        .draw()?;

    // Markers help on short runs but merge into a smear once points are a few pixels apart.
    let marker = match lines.iter().map(|l| l.data.len()).max().unwrap_or(0) {
        0..=40 => 3,
        41..=100 => 2,
        _ => 0,
    };
    for line in lines {
        let color = line.color;
        chart
            .draw_series(
                LineSeries::new(line.data.iter().copied(), color.stroke_width(2))
                    .point_size(marker),
            )?
            .label(line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    Ok(())
}

/// Integer epochs, widened by one each side so a single epoch (or the end points' markers)
/// does not sit on the frame.
fn epoch_range(points: &[CurvePoint]) -> Range<i64> {
    let lo = points.iter().map(|p| p.epoch).min().unwrap_or(0) as i64;
    let hi = points.iter().map(|p| p.epoch).max().unwrap_or(0) as i64;
    let pad = ((hi - lo) / 20).max(1);
    lo - pad..hi + pad
}

/// The data's span plus 5% each side, kept within `[floor, ceil]`; a flat or empty series
/// still gets a visible, non-degenerate range.
fn padded(values: impl Iterator<Item = f64>, floor: Option<f64>, ceil: Option<f64>) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return floor.unwrap_or(0.0)..ceil.unwrap_or(1.0);
    }
    let pad = match (hi - lo) * 0.05 {
        p if p > 0.0 => p,
        _ => (hi.abs() * 0.05).max(0.01),
    };
    let lo = floor.map_or(lo - pad, |f| (lo - pad).max(f));
    let hi = ceil.map_or(hi + pad, |c| (hi + pad).min(c));
    // Clamping a flat series at a bound (e.g. 100%) can collapse the range; reopen it inward.
    if hi - lo < 1e-9 {
        return (lo - pad)..(lo + pad);
    }
    lo..hi
}

/// Few significant digits: ticks like "0.30000000000000004" would crowd the axis.
fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || (0.01..10_000.0).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_png(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(bytes.len() > 10_000, "only {} bytes", bytes.len());
    }

    fn curve(epochs: usize, with_test: bool) -> Vec<CurvePoint> {
        (1..=epochs)
            .map(|e| {
                let t = e as f64;
                CurvePoint {
                    epoch: e,
                    train_loss: 2.3 / t.sqrt(),
                    train_accuracy: 0.98 - 0.6 / (t + 1.0),
                    test_accuracy: with_test.then(|| 0.96 - 0.6 / (t + 1.5)),
                }
            })
            .collect()
    }

    #[test]
    fn writes_a_png() {
        let path = std::env::temp_dir().join(format!("bitlogic-curves-{}.png", std::process::id()));
        write_curves(&path, &curve(30, true), "mnist: 8 layers x 64k LUTs").unwrap();
        check_png(&path);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn single_epoch_without_test() {
        let path =
            std::env::temp_dir().join(format!("bitlogic-curves1-{}.png", std::process::id()));
        write_curves(&path, &curve(1, false), "one epoch").unwrap();
        check_png(&path);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn odd_values_do_not_break_the_plot() {
        let mut points = curve(5, true);
        points[2].train_loss = f64::NAN;
        points[3].train_accuracy = 1.0;
        points[4].test_accuracy = Some(1.0);
        let path =
            std::env::temp_dir().join(format!("bitlogic-curves2-{}.png", std::process::id()));
        write_curves(&path, &points, "").unwrap();
        check_png(&path);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn empty_points_are_an_error() {
        let path = std::env::temp_dir().join("bitlogic-never-written.png");
        let msg = write_curves(&path, &[], "x").unwrap_err().to_string();
        assert!(msg.contains("no epochs"), "{msg}");
        assert!(!path.exists());
    }

    #[test]
    fn unwritable_path_is_an_error() {
        let path = Path::new("/nonexistent-dir/for/bitlogic/curves.png");
        let msg = format!(
            "{:#}",
            write_curves(path, &curve(2, true), "x").unwrap_err()
        );
        assert!(msg.contains("curves.png"), "{msg}");
    }

    #[test]
    fn ranges_are_never_degenerate() {
        assert_eq!(
            padded(std::iter::empty(), Some(0.0), Some(100.0)),
            0.0..100.0
        );
        let r = padded([100.0, 100.0].into_iter(), Some(0.0), Some(100.0));
        assert!(r.start < r.end && r.end <= 100.0 + 1e-9, "{r:?}");
        let r = padded([0.0].into_iter(), Some(0.0), None);
        assert!(r.start < r.end, "{r:?}");
        let r = padded([0.5, 0.7].into_iter(), Some(0.0), None);
        assert!(r.start < 0.5 && r.end > 0.7, "{r:?}");
        assert_eq!(epoch_range(&curve(1, false)), 0..2);
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(format_tick(0.30000000000000004), "0.3");
        assert_eq!(format_tick(95.0), "95");
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(0.00012), "1.20e-4");
    }
}
