//! Drawing a [`Chart`]: PNG at 2× resolution, SVG, and PDF (the SVG converted by svg2pdf with the
//! embedded DejaVu font, so text stays text). One layout for all three: title, subtitle lines with the
//! fixed parameters, the panels side by side (or 2 × 2), and the legend in its own column to the right
//! of the plots, never over data.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{Dash, Look, Marker};
use super::{Axis, Chart, Panel, Series};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The embedded font makes bitmap text independent of system fontconfig.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// The smallest canvas, in layout units (SVG/PDF pixels; the PNG has twice as many in each direction); a
/// chart whose legend needs more height gets a taller one ([`canvas_size`]).
pub const SIZE: (u32, u32) = (1200, 720);
/// Space kept free under the legend's last line, in layout units.
const BOTTOM_MARGIN: f64 = 12.0;
/// Width of the legend column, in layout units.
const LEGEND_WIDTH: u32 = 330;

/// The drawable points: finite, within ±1e300 (the axis padding must stay finite), and on log axes at
/// least 1e-300 (log ticks of subnormal ranges never end). Values outside stay in the JSON, not in the chart.
pub fn clean(points: &[(f64, f64)], x_log: bool, y_log: bool) -> Vec<(f64, f64)> {
    points.iter().copied().filter(|&(x, y)| drawable(x, x_log) && drawable(y, y_log)).collect()
}

fn drawable(v: f64, log: bool) -> bool {
    v.is_finite() && v.abs() <= 1e300 && (!log || v >= 1e-300)
}

/// Draws `chart` as `dir/<name>.png` (2×), `.svg` and `.pdf`, each through a temporary file renamed into
/// place (a reader, or a kill, never sees a half-written chart; a failed draw leaves the previous files).
pub fn draw(chart: &Chart, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let files: Vec<PathBuf> = ["png", "svg", "pdf"].iter().map(|ext| dir.join(format!("{}.{ext}", chart.name))).collect();
    let temps: Vec<PathBuf> = files.iter().map(|f| boltz_core::format::temp_sibling(f)).collect();
    let write = || -> Result<()> {
        let size = canvas_size(chart);
        draw_on(BitMapBackend::new(&temps[0], (size.0 * 2, size.1 * 2)).into_drawing_area(), chart, 2.0)
            .with_context(|| format!("writing {}", files[0].display()))?;
        let svg = svg(chart)?;
        std::fs::write(&temps[1], &svg).with_context(|| format!("writing {}", temps[1].display()))?;
        std::fs::write(&temps[2], svg_to_pdf(&svg).with_context(|| format!("converting {} to PDF", chart.name))?)
            .with_context(|| format!("writing {}", temps[2].display()))?;
        for (tmp, file) in temps.iter().zip(&files) {
            std::fs::rename(tmp, file).with_context(|| format!("writing {}", file.display()))?;
        }
        boltz_core::format::sync_parent(&files[0]);
        Ok(())
    };
    let result = write();
    if result.is_err() {
        for t in &temps {
            let _ = std::fs::remove_file(t);
        }
    }
    result?;
    Ok(files)
}

/// `chart` as an SVG document of [`canvas_size`] (what `draw` writes as `.svg` and converts to PDF).
pub fn svg(chart: &Chart) -> Result<String> {
    register_font();
    let mut svg = String::new();
    draw_on(SVGBackend::with_string(&mut svg, canvas_size(chart)).into_drawing_area(), chart, 1.0)?;
    Ok(svg)
}

/// An SVG (as plotters writes it, text in `sans-serif`) as a one-page vector PDF, text embedded in the
/// DejaVu font (subset).
fn svg_to_pdf(svg: &str) -> Result<Vec<u8>> {
    use svg2pdf::usvg;
    let mut options = usvg::Options { font_family: "DejaVu Sans".into(), ..Default::default() };
    {
        let db = options.fontdb_mut();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(dejavu::sans::bold().to_vec());
        db.set_sans_serif_family("DejaVu Sans");
    }
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| anyhow!("parsing the SVG: {e}"))?;
    svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), svg2pdf::PageOptions::default()).map_err(|e| anyhow!("svg2pdf: {e}"))
}

fn err<E>(chart: &Chart) -> impl Fn(DrawingAreaErrorKind<E>) -> anyhow::Error + '_
where
    E: std::error::Error + Send + Sync,
{
    move |e| anyhow!("drawing {}: {e}", chart.name)
}

fn font(size: f64, scale: f64) -> FontDesc<'static> {
    ("sans-serif", size * scale).into_font()
}

fn draw_on<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart, scale: f64) -> Result<()> {
    let e = err::<DB::ErrorType>(chart);
    let px = |v: f64| (v * scale).round() as i32;
    root.fill(&WHITE).map_err(&e)?;
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(chart.title.clone(), (px(16.0), px(10.0)), font(21.0, scale).color(&BLACK))).map_err(&e)?;
    let grey = RGBColor(70, 70, 70);
    for (i, line) in chart.subtitle.iter().enumerate() {
        root.draw(&Text::new(line.clone(), (px(16.0), px(38.0 + 17.0 * i as f64)), font(13.0, scale).color(&grey))).map_err(&e)?;
    }
    let top = px(header_height(chart)) as u32;
    let body = root.clone().shrink((0, top), (w, h.saturating_sub(top)));
    let legend_w = px(f64::from(LEGEND_WIDTH)) as u32;
    let (plots, legend) = body.split_horizontally(w.saturating_sub(legend_w));
    let areas = match chart.panels.len() {
        4 => plots.split_evenly((2, 2)),
        k => plots.split_evenly((1, k.max(1))),
    };
    for (panel, area) in chart.panels.iter().zip(&areas) {
        draw_panel(area, chart, panel, scale)?;
    }
    draw_legend(&legend, chart, scale)?;
    root.present().map_err(&e)?;
    Ok(())
}

/// Tick positions and how to write them.
struct Ticks {
    major: Vec<f64>,
    minor: Vec<f64>,
    label: Box<dyn Fn(f64) -> String>,
}

/// `10^k` as `10³`, `10⁻²`.
fn superscript_power(k: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = String::from("10");
    if k < 0 {
        s.push('⁻');
    }
    for c in k.unsigned_abs().to_string().chars() {
        s.push(DIGITS[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

/// A number with exactly `decimals` decimals (one style per axis).
fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// Decimals that show a step of `step` exactly (0.25 → 2, 5 → 0).
fn decimals_for(step: f64) -> usize {
    let mut d = 0;
    while d < 8 && ((step * 10f64.powi(d as i32)).round() - step * 10f64.powi(d as i32)).abs() > 1e-6 {
        d += 1;
    }
    d
}

/// Log ticks: decades `10^k` with minor ticks at 2–9 × 10^k, labelled `10ᵏ` (or plain integers when every
/// decade is an integer up to 10⁴); spans under two decades use 1–2–5 (or 1–9) steps with plain labels.
fn log_ticks(lo: f64, hi: f64) -> Ticks {
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let in_range = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let decades: Vec<f64> = (k0..=k1).map(|k| 10f64.powi(k)).filter(in_range).collect();
    let multiples =
        |ms: &[f64]| -> Vec<f64> { (k0..=k1).flat_map(|k| ms.iter().map(move |m| m * 10f64.powi(k))).filter(in_range).collect() };
    // Two decades or more: decades, as powers of ten on every chart (one style for sibling charts).
    if decades.len() >= 2 && hi / lo >= 100.0 {
        return Ticks {
            major: decades,
            minor: multiples(&[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]),
            label: Box::new(move |v| superscript_power(v.log10().round() as i32)),
        };
    }
    let mut major = multiples(&[1.0, 2.0, 5.0]);
    let mut minor = multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    if major.len() < 3 {
        major = minor.clone();
        minor = multiples(&[1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5]);
    }
    let smallest = major.first().copied().unwrap_or(1.0);
    let decimals = if smallest >= 1.0 { 0 } else { (-smallest.log10().floor()) as usize };
    Ticks { major, minor, label: Box::new(move |v| fixed(v, decimals)) }
}

/// Linear ticks at a 1–2–5 step giving 4–8 labels, with the decimals that step needs.
fn linear_ticks(lo: f64, hi: f64) -> Ticks {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 8.0).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let major: Vec<f64> = (first..=last).map(|i| i as f64 * step).collect();
    let sub = step / 5.0;
    let minor: Vec<f64> = ((lo / sub).ceil() as i64..=(hi / sub).floor() as i64).map(|i| i as f64 * sub).collect();
    let decimals = decimals_for(step);
    Ticks { major, minor, label: Box::new(move |v| fixed(v, decimals)) }
}

/// Ticks at the axis's own values ([`crate::Axis::ticks`]), labelled as given.
fn given_ticks(ticks: &[(f64, String)]) -> Ticks {
    let ticks = ticks.to_vec();
    Ticks {
        major: ticks.iter().map(|t| t.0).collect(),
        minor: Vec::new(),
        label: Box::new(move |v| {
            ticks.iter().find(|t| (t.0 - v).abs() <= 1e-9 * v.abs().max(1e-300)).map(|t| t.1.clone()).unwrap_or_default()
        }),
    }
}

fn category_ticks(names: &[String]) -> Ticks {
    let names = names.to_vec();
    Ticks {
        major: (1..=names.len()).map(|i| i as f64).collect(),
        minor: Vec::new(),
        label: Box::new(move |v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 1.0 {
                names.get(i as usize - 1).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }),
    }
}

/// The data range of an axis over `values`, padded (log: ×1.4 each side; linear: 6 %), or its fixed range.
fn range(axis: &Axis, values: impl Iterator<Item = f64>) -> (f64, f64) {
    if let Some(r) = axis.range {
        return r;
    }
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return if axis.log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if axis.log {
        let (lo, hi) = if lo == hi { (lo / 2.0, hi * 2.0) } else { (lo, hi) };
        (lo / 1.4, hi * 1.4)
    } else {
        let pad = if hi > lo { 0.06 * (hi - lo) } else { 1.0f64.max(hi.abs() * 0.1) };
        (lo - pad, hi + pad)
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart, panel: &Panel, scale: f64) -> Result<()> {
    let (xl, yl) = (panel.x.log && panel.x_categories.is_empty(), panel.y.log);
    let xs = panel
        .series
        .iter()
        .flat_map(|s| clean(&s.points, xl, yl).into_iter().map(|p| p.0).chain(s.failed.iter().copied().filter(move |x| drawable(*x, xl))));
    let (x0, x1) = if panel.x_categories.is_empty() { range(&panel.x, xs) } else { (0.5, panel.x_categories.len() as f64 + 0.5) };
    let ys = panel.series.iter().flat_map(|s| {
        clean(&s.points, xl, yl)
            .into_iter()
            .map(|p| p.1)
            .chain(s.spread.iter().flat_map(|&(_, lo, hi)| [lo, hi]).filter(move |v| drawable(*v, yl)))
    });
    let (y0, y1) = range(&panel.y, ys);
    let yt = if yl { log_ticks(y0, y1) } else { linear_ticks(y0, y1) };
    // Failed runs get a strip of their own under the data's range (one row per series that has any).
    let failed_rows = failed_row_count(panel, xl);
    let y0 = failed_strip(y0, y1, yl, failed_rows);
    let xt = if !panel.x.ticks.is_empty() {
        given_ticks(&panel.x.ticks)
    } else if panel.x_categories.is_empty() {
        if xl {
            log_ticks(x0, x1)
        } else {
            linear_ticks(x0, x1)
        }
    } else {
        category_ticks(&panel.x_categories)
    };
    match (xl, yl) {
        (true, true) => plot(area, chart, panel, scale, (x0..x1).log_scale(), (y0..y1).log_scale(), xt, yt, (x0, x1), (y0, y1)),
        (true, false) => plot(area, chart, panel, scale, (x0..x1).log_scale(), RangedCoordf64::from(y0..y1), xt, yt, (x0, x1), (y0, y1)),
        (false, true) => plot(area, chart, panel, scale, RangedCoordf64::from(x0..x1), (y0..y1).log_scale(), xt, yt, (x0, x1), (y0, y1)),
        (false, false) => {
            plot(area, chart, panel, scale, RangedCoordf64::from(x0..x1), RangedCoordf64::from(y0..y1), xt, yt, (x0, x1), (y0, y1))
        }
    }
}

/// The stroke of a series line.
fn stroke(look: &Look, scale: f64) -> ShapeStyle {
    look.hue.rgb().stroke_width((2.0 * scale).round() as u32)
}

/// `(size, spacing)` of a dashed line, in pixels.
fn dash_pattern(dash: Dash, scale: f64) -> Option<(i32, i32)> {
    let px = |v: f64| (v * scale).round() as i32;
    match dash {
        Dash::Solid => None,
        Dash::Short => Some((px(5.0), px(4.0))),
        Dash::Dashed => Some((px(12.0), px(6.0))),
        Dash::Dotted => Some((px(2.0), px(4.0))),
    }
}

/// Draws the marker of a series at absolute pixel `at` on `area`.
fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    marker: Marker,
    color: RGBColor,
    scale: f64,
) -> Result<()> {
    let base = area.get_base_pixel();
    let at = (at.0 - base.0, at.1 - base.1);
    let r = (4.5 * scale).round() as i32;
    let fill = color.filled();
    let failed = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a marker: {e}");
    match marker {
        Marker::None => Ok(()),
        Marker::Circle => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), r, fill))).map_err(failed),
        Marker::Square => area.draw(&(EmptyElement::at(at) + Rectangle::new([(-r, -r), (r, r)], fill))).map_err(failed),
        Marker::Diamond => {
            let d = r + r / 3;
            area.draw(&(EmptyElement::at(at) + Polygon::new(vec![(0, -d), (d, 0), (0, d), (-d, 0)], fill))).map_err(failed)
        }
        Marker::Triangle => {
            let d = r + r / 4;
            area.draw(&(EmptyElement::at(at) + Polygon::new(vec![(0, -d), (d, d * 3 / 4), (-d, d * 3 / 4)], fill))).map_err(failed)
        }
        Marker::Cross => draw_x(area, at, r, color.stroke_width((2.0 * scale).round() as u32)).map_err(failed),
    }
}

/// An ✕ of half-size `r` at `at` (relative to `area`).
fn draw_x<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    r: i32,
    s: ShapeStyle,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    area.draw(&(EmptyElement::at(at) + PathElement::new(vec![(-r, -r), (r, r)], s) + PathElement::new(vec![(-r, r), (r, -r)], s)))
}

/// The ✕ drawn at absolute pixel `at` where a measured run failed (weights or outputs beyond the format).
fn draw_failed<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, at: (i32, i32), color: RGBColor, scale: f64) -> Result<()> {
    let base = area.get_base_pixel();
    let r = (6.0 * scale).round() as i32;
    draw_x(area, (at.0 - base.0, at.1 - base.1), r, color.stroke_width((2.5 * scale).round() as u32))
        .map_err(|e| anyhow!("drawing a ✕: {e}"))
}

#[allow(clippy::too_many_arguments)]
fn plot<DB: DrawingBackend, X, Y>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
    panel: &Panel,
    scale: f64,
    x: X,
    y: Y,
    xt: Ticks,
    yt: Ticks,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let e = err::<DB::ErrorType>(chart);
    let px = |v: f64| (v * scale).round() as u32;
    let (xl, yl) = (panel.x.log && panel.x_categories.is_empty(), panel.y.log);
    let mut ctx = ChartBuilder::on(area)
        .caption(&panel.title, font(15.0, scale))
        .margin(px(10.0))
        .margin_right(px(18.0))
        .x_label_area_size(px(46.0 + 15.0 * (panel.x_categories.iter().map(|c| c.lines().count()).max().unwrap_or(1).max(1) - 1) as f64))
        .y_label_area_size(px(70.0))
        .build_cartesian_2d(x, y)
        .map_err(&e)?;
    // The axes and their descriptions from plotters; grid lines, ticks and labels from our own ticks (one
    // label style per axis, minor lines on log axes).
    let blank = |_: &f64| String::new();
    ctx.configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_label_formatter(&blank)
        .y_label_formatter(&blank)
        .set_all_tick_mark_size(0)
        .x_desc(&panel.x.label)
        .y_desc(&panel.y.label)
        .axis_desc_style(font(14.0, scale))
        .axis_style(RGBColor(90, 90, 90).stroke_width(px(1.0).max(1)))
        .draw()
        .map_err(&e)?;
    let light = RGBColor(236, 236, 236).stroke_width(px(1.0).max(1));
    let bold = RGBColor(200, 200, 200).stroke_width(px(1.0).max(1));
    for (values, style) in [(&xt.minor, light), (&xt.major, bold)] {
        ctx.draw_series(values.iter().map(|&v| PathElement::new(vec![(v, y0), (v, y1)], style))).map_err(&e)?;
    }
    for (values, style) in [(&yt.minor, light), (&yt.major, bold)] {
        ctx.draw_series(values.iter().map(|&v| PathElement::new(vec![(x0, v), (x1, v)], style))).map_err(&e)?;
    }
    let base = area.get_base_pixel();
    let label_style = font(12.5, scale).color(&RGBColor(40, 40, 40));
    // Many categories share the width: a smaller font keeps their labels apart.
    let x_label_style = if panel.x_categories.len() > 6 { font(11.0, scale).color(&RGBColor(40, 40, 40)) } else { label_style.clone() };
    for &v in &xt.major {
        let (ax, ay) = ctx.backend_coord(&(v, y0));
        let style = x_label_style.pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
        // A category label may have several lines (`\n`).
        for (i, line) in (xt.label)(v).split('\n').enumerate() {
            let dy = px(6.0 + 15.0 * i as f64) as i32;
            area.draw(&Text::new(line.to_string(), (ax - base.0, ay - base.1 + dy), style.clone())).map_err(&e)?;
        }
    }
    // The values the chart is about, labelled where the axis spans them; tick labels within 14 units of
    // one give way.
    let marks: Vec<f64> = panel.y_marks.iter().copied().filter(|&m| drawable(m, yl) && m >= yt_lo(&yt, y1) && m <= y1).collect();
    let mark_px: Vec<i32> = marks.iter().map(|&m| ctx.backend_coord(&(x0, m)).1).collect();
    for &m in &marks {
        let (ax, ay) = ctx.backend_coord(&(x0, m));
        let style = font(12.5, scale).color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Right,
            plotters::style::text_anchor::VPos::Center,
        ));
        area.draw(&Text::new(fixed(m, 0), (ax - base.0 - px(6.0) as i32, ay - base.1), style)).map_err(&e)?;
        let tick = BLACK.stroke_width(px(1.5).max(1));
        area.draw(&PathElement::new(vec![(ax - base.0 - px(4.0) as i32, ay - base.1), (ax - base.0, ay - base.1)], tick)).map_err(&e)?;
    }
    for &v in &yt.major {
        let (ax, ay) = ctx.backend_coord(&(x0, v));
        if mark_px.iter().any(|&m| (m - ay).abs() < px(14.0) as i32) {
            continue;
        }
        let style = label_style.pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Right,
            plotters::style::text_anchor::VPos::Center,
        ));
        area.draw(&Text::new((yt.label)(v), (ax - base.0 - px(6.0) as i32, ay - base.1), style)).map_err(&e)?;
    }
    // Failed runs are marked in a strip under the data's range, one row per series that has any (the ✕
    // of two series at one N do not hide each other), with a separating line and "no run" where the y
    // labels are: a ✕ is never read as a value.
    let failed_rows = failed_row_count(panel, xl);
    let (strip_top, rows) = failed_rows_at(y0, y1, yl, failed_rows);
    if let Some(edge) = strip_top {
        let line = RGBColor(150, 150, 150).stroke_width(px(1.0).max(1));
        ctx.draw_series(std::iter::once(PathElement::new(vec![(x0, edge), (x1, edge)], line))).map_err(&e)?;
        let mid = if yl { (y0 * edge).sqrt() } else { (y0 + edge) / 2.0 };
        let (ax, ay) = ctx.backend_coord(&(x0, mid));
        let style = label_style.pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Right,
            plotters::style::text_anchor::VPos::Center,
        ));
        area.draw(&Text::new("no run", (ax - base.0 - px(6.0) as i32, ay - base.1), style)).map_err(&e)?;
    }
    let mut failed_row = 0usize;
    let dodge = panel_dodge(panel, xl);
    for (k, s) in panel.series.iter().enumerate() {
        let floor = rows.get(failed_row).copied().unwrap_or(y0);
        if has_failed_runs(s, xl) {
            failed_row += 1;
        }
        let shift = |x: f64| if xl { x * dodge[k] } else { x + dodge[k] };
        let color = s.look.hue.rgb();
        let pts: Vec<(f64, f64)> = clean(&s.points, xl, yl).into_iter().map(|(x, y)| (shift(x), y)).collect();
        if !s.scatter && pts.len() >= 2 {
            match dash_pattern(s.look.dash, scale) {
                None => {
                    ctx.draw_series(LineSeries::new(pts.clone(), stroke(&s.look, scale))).map_err(&e)?;
                }
                Some((size, spacing)) => {
                    ctx.draw_series(DashedLineSeries::new(pts.clone(), size, spacing, stroke(&s.look, scale))).map_err(&e)?;
                }
            }
        }
        // Min–max whiskers.
        let cap = (4.0 * scale).round() as i32;
        let whisker = color.stroke_width(px(1.5).max(1));
        for &(sx, lo, hi) in &s.spread {
            if !(drawable(sx, xl) && drawable(lo, yl) && drawable(hi, yl)) {
                continue;
            }
            let sx = shift(sx);
            ctx.draw_series(std::iter::once(PathElement::new(vec![(sx, lo), (sx, hi)], whisker))).map_err(&e)?;
            for v in [lo, hi] {
                ctx.draw_series(std::iter::once(EmptyElement::at((sx, v)) + PathElement::new(vec![(-cap, 0), (cap, 0)], whisker)))
                    .map_err(&e)?;
            }
        }
        let plotting = ctx.plotting_area().strip_coord_spec();
        for &p in &pts {
            draw_marker(&plotting, ctx.backend_coord(&p), s.look.marker, color, scale)?;
        }
        for &fx in s.failed.iter().filter(|x| drawable(**x, xl)) {
            draw_failed(&plotting, ctx.backend_coord(&(shift(fx), floor)), color, scale)?;
        }
    }
    Ok(())
}

/// The lowest value the y ticks cover (the data's range, not a strip of failed runs under it).
fn yt_lo(yt: &Ticks, hi: f64) -> f64 {
    yt.major.iter().chain(&yt.minor).copied().fold(hi, f64::min)
}

/// Whether `series` marks a failed run the x axis can show (one row of the failed-run strip).
fn has_failed_runs(series: &Series, x_log: bool) -> bool {
    series.failed.iter().any(|x| drawable(*x, x_log))
}

/// The rows of a panel's failed-run strip: its series with a failed run to mark.
fn failed_row_count(panel: &Panel, x_log: bool) -> usize {
    panel.series.iter().filter(|s| has_failed_runs(s, x_log)).count()
}

/// The fraction of a panel's height the strip of failed runs takes, for `rows` rows.
fn strip_fraction(rows: usize) -> f64 {
    (0.035 + 0.04 * rows as f64).min(0.3)
}

/// The y axis's lower end with a strip for `rows` rows of failed runs under the data's range `[lo, hi]`
/// (`lo` itself without rows).
fn failed_strip(lo: f64, hi: f64, log: bool, rows: usize) -> f64 {
    if rows == 0 {
        return lo;
    }
    let k = strip_fraction(rows) / (1.0 - strip_fraction(rows));
    if log {
        lo * (hi / lo).powf(-k)
    } else {
        lo - k * (hi - lo)
    }
}

/// With the axis running from `bottom` (see [`failed_strip`]) to `hi`: the strip's upper edge and the y of
/// each of its `rows` rows, all below the data, which the axis showed from the edge up before the strip
/// was added.
fn failed_rows_at(bottom: f64, hi: f64, log: bool, rows: usize) -> (Option<f64>, Vec<f64>) {
    if rows == 0 {
        return (None, Vec::new());
    }
    let f = strip_fraction(rows);
    let at = |t: f64| if log { bottom * (hi / bottom).powf(t) } else { bottom + t * (hi - bottom) };
    let edge = at(f);
    (Some(edge), (0..rows).map(|r| at(f * (r as f64 + 0.5) / rows as f64)).collect())
}

/// The horizontal dodge of each series of a panel with [`Panel::dodge`]: measured series spread over ±1.5 %
/// of a decade (log x: a factor) or ±0.06 (linear x) around their x, so that equal values stay visible;
/// formulas and bounds stay in place.
fn panel_dodge(panel: &Panel, x_log: bool) -> Vec<f64> {
    let identity = if x_log { 1.0 } else { 0.0 };
    if !panel.dodge {
        return vec![identity; panel.series.len()];
    }
    let measured: Vec<usize> = (0..panel.series.len()).filter(|&i| panel.series[i].is_measured()).collect();
    let k = measured.len() as f64;
    (0..panel.series.len())
        .map(|i| match measured.iter().position(|&m| m == i) {
            Some(j) => {
                let t = j as f64 - (k - 1.0) / 2.0;
                if x_log {
                    10f64.powf(0.015 * t)
                } else {
                    0.06 * t
                }
            }
            None => identity,
        })
        .collect()
}

/// Height of the title and subtitle lines above the panels, in layout units.
fn header_height(chart: &Chart) -> f64 {
    44.0 + 17.0 * chart.subtitle.len() as f64
}

/// The legend's text size (layout units).
pub const LEGEND_TEXT: f64 = 12.5;
/// The legend's line height.
const LEGEND_LINE: f64 = 16.0;
/// Width of an entry's sample (its line and marker).
const LEGEND_SAMPLE: f64 = 40.0;
/// Where the first entry starts, from the legend column's top.
const LEGEND_FIRST: f64 = 28.0;

/// Where the legend's text starts in its column (layout units).
pub const LEGEND_TEXT_X: f64 = 8.0 + LEGEND_SAMPLE + 8.0;
/// The widest a legend line may be (layout units): the column less the sample and both margins.
pub const LEGEND_TEXT_WIDTH: f64 = LEGEND_WIDTH as f64 - LEGEND_TEXT_X - 8.0;

/// One legend entry, laid out: what it shows and its wrapped lines, from `top` (layout units, from the
/// legend column's top).
pub struct LegendEntry {
    /// The series' name, look and whether it is drawn without lines; `None` for the ✕ of failed runs.
    pub series: Option<(String, Look, bool)>,
    /// Top of the entry.
    pub top: f64,
    /// Its text, wrapped to [`LEGEND_TEXT_WIDTH`] as measured in the embedded font.
    pub lines: Vec<String>,
}

/// The legend laid out in its column: one entry per distinct (name, look) in panel order, then the ✕ of
/// failed runs where a chart has any; and the height it needs (layout units, from the column's top).
pub fn legend_layout(chart: &Chart) -> (Vec<LegendEntry>, f64) {
    let mut y = LEGEND_FIRST;
    let mut out = Vec::new();
    for entry in chart.legend_entries() {
        let lines = wrap(&entry.0, LEGEND_TEXT, LEGEND_TEXT_WIDTH);
        let next = y + LEGEND_LINE * lines.len() as f64 + 5.0;
        out.push(LegendEntry { series: Some(entry), top: y, lines });
        y = next;
    }
    if let Some(note) = &chart.failed_note {
        if chart.panels.iter().flat_map(|p| &p.series).any(|s| !s.failed.is_empty()) {
            let lines = wrap(note, LEGEND_TEXT, LEGEND_TEXT_WIDTH);
            let next = y + LEGEND_LINE * lines.len() as f64;
            out.push(LegendEntry { series: None, top: y, lines });
            y = next;
        }
    }
    (out, y)
}

/// The canvas of `chart` in layout units: [`SIZE`], taller where the legend needs it, so no entry is
/// ever cut off at the bottom.
pub fn canvas_size(chart: &Chart) -> (u32, u32) {
    let (_, legend) = legend_layout(chart);
    let needed = (header_height(chart) + legend + BOTTOM_MARGIN).ceil() as u32;
    (SIZE.0, SIZE.1.max(needed))
}

/// Width of `text` in the embedded font at `size` (layout units), as the renderer draws it.
pub fn text_width(text: &str, size: f64) -> f64 {
    register_font();
    match font(size, 1.0).box_size(text) {
        Ok((w, _)) => f64::from(w),
        // Without the font (never with the embedded one): a generous estimate.
        Err(_) => 0.62 * size * text.chars().count() as f64,
    }
}

/// Breaks `text` into lines no wider than `width` at `size` (measured in the embedded font); a single
/// word wider than that is broken between characters.
fn wrap(text: &str, size: f64, width: f64) -> Vec<String> {
    let fits = |s: &str| text_width(s, size) <= width;
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
        if fits(&candidate) {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // The word alone, broken where even it does not fit.
        for c in word.chars() {
            let mut longer = line.clone();
            longer.push(c);
            if !line.is_empty() && !fits(&longer) {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Draws the legend laid out by [`legend_layout`]: each entry's line pattern and marker (or the ✕ of
/// failed runs) and its wrapped text.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart, scale: f64) -> Result<()> {
    let e = err::<DB::ErrorType>(chart);
    let px = |v: f64| (v * scale).round() as i32;
    let (entries, _) = legend_layout(chart);
    let base = area.get_base_pixel();
    for entry in &entries {
        let mid = px(entry.top + LEGEND_LINE / 2.0);
        let sample = (base.0 + px(8.0 + LEGEND_SAMPLE / 2.0), base.1 + mid);
        match &entry.series {
            Some((_, look, scatter)) => {
                let (a, b) = ((px(8.0), mid), (px(8.0 + LEGEND_SAMPLE), mid));
                match (scatter, dash_pattern(look.dash, scale)) {
                    (true, _) => {}
                    (false, None) => area.draw(&PathElement::new(vec![a, b], stroke(look, scale))).map_err(&e)?,
                    (false, Some((s, sp))) => {
                        area.draw(&plotters::element::DashedPathElement::new(vec![a, b], s, sp, stroke(look, scale))).map_err(&e)?
                    }
                }
                draw_marker(area, sample, look.marker, look.hue.rgb(), scale)?;
            }
            None => draw_failed(area, sample, RGBColor(60, 60, 60), scale)?,
        }
        for (i, line) in entry.lines.iter().enumerate() {
            let y = px(entry.top + LEGEND_LINE * i as f64 + 2.0);
            area.draw(&Text::new(line.clone(), (px(LEGEND_TEXT_X), y), font(LEGEND_TEXT, scale).color(&BLACK))).map_err(&e)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_decades_or_steps_with_one_label_style() {
        let t = log_ticks(3.0, 5.0e5);
        assert_eq!(t.major, vec![10.0, 100.0, 1e3, 1e4, 1e5]);
        assert!(t.minor.contains(&20.0) && t.minor.contains(&4e5));
        assert_eq!(t.major.iter().map(|v| (t.label)(*v)).collect::<Vec<_>>(), ["10¹", "10²", "10³", "10⁴", "10⁵"]);
        // Powers of ten on every axis spanning two decades or more (sibling charts read alike).
        let t = log_ticks(1.5, 900.0);
        assert_eq!(t.major.iter().map(|v| (t.label)(*v)).collect::<Vec<_>>(), ["10¹", "10²"]);
        // Under two decades the 1–2–5 values are labelled, plainly.
        let t = log_ticks(8.0, 600.0);
        assert_eq!(t.major.iter().map(|v| (t.label)(*v)).collect::<Vec<_>>(), ["10", "20", "50", "100", "200", "500"]);
        let t = log_ticks(1e-7, 1e-2);
        assert_eq!((t.label)(1e-5), "10⁻⁵");
        // Under a decade: 1–2–5 steps (here too few, so 1–9), plain labels.
        let t = log_ticks(12.0, 80.0);
        assert_eq!(t.major, vec![20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]);
        assert!(t.major.iter().all(|v| (t.label)(*v).chars().all(|c| c.is_ascii_digit())));
        let t = linear_ticks(0.0, 1.05);
        assert_eq!(t.major.iter().map(|v| (t.label)(*v)).collect::<Vec<_>>(), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let t = linear_ticks(-3.2, 41.0);
        assert!(t.major.iter().all(|v| !(t.label)(*v).contains('.')), "{:?}", t.major);
    }

    /// Failed runs sit in a strip under the data: every row below the data's lowest value, above the axis's
    /// new end, the edge at the data's end; no strip, no change.
    #[test]
    fn failed_runs_get_a_strip_under_the_data() {
        for (lo, hi, log) in [(0.01, 5000.0, true), (0.0, 1.05, false), (17.0, 53.0, true)] {
            for rows in 1..=5 {
                let bottom = failed_strip(lo, hi, log, rows);
                assert!(bottom < lo, "{lo}..{hi}: {bottom}");
                let (edge, ys) = failed_rows_at(bottom, hi, log, rows);
                let edge = edge.expect("an edge");
                assert!(((edge - lo) / lo.abs().max(1.0)).abs() < 1e-9, "the strip ends where the data's range began: {edge} vs {lo}");
                assert_eq!(ys.len(), rows);
                assert!(ys.iter().all(|&y| y > bottom && y < lo), "{lo}..{hi}, {rows} rows: {ys:?}");
                assert!(ys.windows(2).all(|w| w[0] < w[1]), "{ys:?}");
            }
            assert_eq!(failed_strip(lo, hi, log, 0), lo);
            assert_eq!(failed_rows_at(lo, hi, log, 0), (None, vec![]));
        }
    }

    #[test]
    fn legend_text_wraps_within_its_column_as_measured() {
        let text = "one layer, softmax, λ > 0 chosen for fewest bits (built, factored)";
        let lines = wrap(text, LEGEND_TEXT, LEGEND_TEXT_WIDTH);
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines.iter().all(|l| text_width(l, LEGEND_TEXT) <= LEGEND_TEXT_WIDTH), "{lines:?}");
        assert_eq!(lines.join(" "), text, "nothing lost");
        // A word wider than the column is broken, not let out of it.
        let long = "x".repeat(200);
        let lines = wrap(&long, LEGEND_TEXT, LEGEND_TEXT_WIDTH);
        assert!(lines.len() >= 2 && lines.iter().all(|l| text_width(l, LEGEND_TEXT) <= LEGEND_TEXT_WIDTH));
        assert_eq!(lines.concat(), long);
        // Wider text measures wider.
        assert!(text_width("WWWW", 12.5) > text_width("iiii", 12.5));
    }
}
