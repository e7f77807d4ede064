//! Paper-style charts drawn from result files (PNG and SVG, embedded DejaVu font, log axes where growth
//! is exponential). Charts are only ever drawn from the JSON, so `boltz plot` can redraw them.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde_json::Value;

use crate::experiments::ResultFile;
use crate::rows::{self, ApproximationRow, Built, ConstructionRow, OneLayerFields, SeparationRow};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The embedded font makes bitmap text independent of system fontconfig.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Measured values: line and markers.
    Measured,
    /// Formulas and references: a line only.
    Formula,
    /// Points only (values that depend on more than the x variable).
    Scatter,
}

/// One named series.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points (non-finite and, on log axes, non-positive values are dropped).
    pub points: Vec<(f64, f64)>,
    /// Style.
    pub style: Style,
}

/// A chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File stem (`depth_vs_n` → `depth_vs_n.png` + `.svg`).
    pub name: String,
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Log x axis.
    pub x_log: bool,
    /// Log y axis.
    pub y_log: bool,
    /// The series.
    pub series: Vec<Series>,
    /// Names of categorical x positions `1, 2, …` (empty: a numeric x axis).
    pub x_categories: Vec<String>,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

/// The drawable points: finite, within ±1e300 (the axis padding must stay finite), and on log axes at
/// least 1e-300 (log ticks of subnormal ranges never end). Values outside stay in the JSON, not in the chart.
fn clean(points: &[(f64, f64)], x_log: bool, y_log: bool) -> Vec<(f64, f64)> {
    let ok = |v: f64, log: bool| v.is_finite() && v.abs() <= 1e300 && (!log || v >= 1e-300);
    points.iter().copied().filter(|&(x, y)| ok(x, x_log) && ok(y, y_log)).collect()
}

fn bounds(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (lo, hi) = if lo == hi { (lo / 2.0, hi * 2.0) } else { (lo, hi) };
        (lo / 1.5, hi * 1.5)
    } else {
        let pad = if hi > lo { 0.08 * (hi - lo) } else { 1.0f64.max(hi.abs() * 0.1) };
        (lo - pad, hi + pad)
    }
}

/// A tick label: `1e-5`, `12`, `0.25` (scientific outside [1e-3, 1e5)).
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 10.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn draw_on<DB: DrawingBackend, X, Y>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    chart: &Chart,
    x: X,
    y: Y,
    legend: SeriesLabelPosition,
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing {}: {e:?}", chart.name);
    root.fill(&WHITE).map_err(err)?;
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    // Categorical x axes name their positions; numeric axes use the compact numbers of `tick_label`.
    let x_tick = |v: &f64| {
        if chart.x_categories.is_empty() {
            return tick_label(*v);
        }
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 1.0 {
            chart.x_categories.get(i as usize - 1).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let y_tick = |v: &f64| tick_label(*v);
    let x_labels = if chart.x_categories.is_empty() { 8 } else { chart.x_categories.len() + 2 };
    ctx.configure_mesh()
        .x_labels(x_labels)
        .y_labels(8)
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick)
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    for (i, s) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts = clean(&s.points, chart.x_log, chart.y_log);
        if pts.is_empty() {
            continue;
        }
        if s.style == Style::Scatter {
            ctx.draw_series(pts.iter().map(|&(x, y)| TriangleMarker::new((x, y), 6, color.filled())))
                .map_err(err)?
                .label(&s.name)
                .legend(move |(x, y)| TriangleMarker::new((x + 11, y), 6, color.filled()));
            continue;
        }
        let width = if s.style == Style::Measured { 3 } else { 2 };
        ctx.draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))
            .map_err(err)?
            .label(&s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3)));
        if s.style == Style::Measured {
            ctx.draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled()))).map_err(err)?;
        }
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(legend)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// The legend corner that covers the fewest data points (the legend box is taken as 45 % of the width
/// and 35 % of the height of the plot).
fn legend_corner(chart: &Chart, x: (f64, f64, bool), y: (f64, f64, bool)) -> SeriesLabelPosition {
    let unit = |v: f64, (lo, hi, log): (f64, f64, bool)| {
        let (v, lo, hi) = if log { (v.log10(), lo.log10(), hi.log10()) } else { (v, lo, hi) };
        if hi > lo {
            (v - lo) / (hi - lo)
        } else {
            0.5
        }
    };
    // Points and the lines between them (sampled), in unit coordinates.
    let mut unit_points: Vec<(f64, f64)> = Vec::new();
    for s in &chart.series {
        let pts: Vec<(f64, f64)> = clean(&s.points, chart.x_log, chart.y_log).iter().map(|&(a, b)| (unit(a, x), unit(b, y))).collect();
        unit_points.extend(&pts);
        if s.style != Style::Scatter {
            for w in pts.windows(2) {
                unit_points.extend((1..16).map(|i| {
                    let t = f64::from(i) / 16.0;
                    (w[0].0 + t * (w[1].0 - w[0].0), w[0].1 + t * (w[1].1 - w[0].1))
                }));
            }
        }
    }
    let covered = |x_range: (f64, f64), y_range: (f64, f64)| {
        unit_points.iter().filter(|(a, b)| (x_range.0..=x_range.1).contains(a) && (y_range.0..=y_range.1).contains(b)).count()
    };
    let (left, right, top, middle, bottom) = ((0.0, 0.45), (0.55, 1.0), (0.65, 1.0), (0.33, 0.67), (0.0, 0.35));
    [
        (SeriesLabelPosition::UpperLeft, covered(left, top)),
        (SeriesLabelPosition::UpperRight, covered(right, top)),
        (SeriesLabelPosition::LowerRight, covered(right, bottom)),
        (SeriesLabelPosition::LowerLeft, covered(left, bottom)),
        (SeriesLabelPosition::MiddleRight, covered(right, middle)),
    ]
    .into_iter()
    .min_by_key(|(_, n)| *n)
    .map_or(SeriesLabelPosition::UpperLeft, |(p, _)| p)
}

fn draw_backend<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, chart: &Chart) -> Result<()> {
    let all: Vec<(f64, f64)> = chart.series.iter().flat_map(|s| clean(&s.points, chart.x_log, chart.y_log)).collect();
    let (x0, x1) = if chart.x_categories.is_empty() {
        bounds(all.iter().map(|p| p.0), chart.x_log)
    } else {
        (0.5, chart.x_categories.len() as f64 + 0.5)
    };
    let (y0, mut y1) = bounds(all.iter().map(|p| p.1), chart.y_log);
    if !chart.x_categories.is_empty() && chart.y_log {
        // Room above the points for the legend.
        y1 *= 6.0;
    }
    let legend = legend_corner(chart, (x0, x1, chart.x_log), (y0, y1, chart.y_log));
    match (chart.x_log, chart.y_log) {
        (true, true) => draw_on(&root, chart, (x0..x1).log_scale(), (y0..y1).log_scale(), legend),
        (true, false) => draw_on(&root, chart, (x0..x1).log_scale(), RangedCoordf64::from(y0..y1), legend),
        (false, true) => draw_on(&root, chart, RangedCoordf64::from(x0..x1), (y0..y1).log_scale(), legend),
        (false, false) => draw_on(&root, chart, RangedCoordf64::from(x0..x1), RangedCoordf64::from(y0..y1), legend),
    }
}

/// Draws `chart` as `dir/<name>.png` and `dir/<name>.svg`.
pub fn draw(chart: &Chart, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let png = dir.join(format!("{}.png", chart.name));
    let svg = dir.join(format!("{}.svg", chart.name));
    // Drawn into temporary files in the same directory and renamed into place: a reader (or a kill) never
    // sees a half-written chart, and a failed draw leaves the previous chart and no temporary file.
    let (png_tmp, svg_tmp) = (boltz_core::format::temp_sibling(&png), boltz_core::format::temp_sibling(&svg));
    let result = draw_backend(BitMapBackend::new(&png_tmp, (960, 620)).into_drawing_area(), chart)
        .and_then(|()| draw_backend(SVGBackend::new(&svg_tmp, (960, 620)).into_drawing_area(), chart))
        .and_then(|()| {
            std::fs::rename(&png_tmp, &png).map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
            std::fs::rename(&svg_tmp, &svg).map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
            boltz_core::format::sync_parent(&png);
            Ok(())
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&png_tmp);
        let _ = std::fs::remove_file(&svg_tmp);
    }
    result?;
    Ok(vec![png, svg])
}

/// The points `(x(r), y(r))` of the rows `keep` selects that have a y value, sorted by x.
fn series_by<R>(rows: &[R], keep: impl Fn(&R) -> bool, x: impl Fn(&R) -> f64, y: impl Fn(&R) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = rows.iter().filter(|r| keep(r)).filter_map(|r| Some((x(r), y(r)?))).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

fn is_policy(p: &str) -> impl Fn(&ConstructionRow) -> bool + '_ {
    move |r| r.policy == p
}

/// N of a construction row, the x axis of the capacity charts.
fn big_n(r: &ConstructionRow) -> f64 {
    r.sequences as f64
}

/// A value of a built one-layer row.
fn one_layer(f: impl Fn(&OneLayerFields) -> f64) -> impl Fn(&ConstructionRow) -> Option<f64> {
    move |r| r.built.as_ref()?.one_layer.as_ref().map(&f)
}

/// A value of a built row of any construction.
fn built(f: impl Fn(&Built) -> Option<f64>) -> impl Fn(&ConstructionRow) -> Option<f64> {
    move |r| f(r.built.as_ref()?)
}

/// A value of the run of `backend` in `precision`, where the row has one.
fn run_value<'a>(
    backend: &'a str,
    precision: &'a str,
    f: impl Fn(&rows::BackendRunRow) -> Option<f64> + 'a,
) -> impl Fn(&ConstructionRow) -> Option<f64> + 'a {
    move |r| r.built.as_ref().and_then(|b| rows::BackendRunRow::find(&b.runs, backend, precision)).and_then(&f)
}

fn fewest_bits(r: &ConstructionRow) -> Option<f64> {
    r.built.as_ref()?.bits.as_ref()?.fewest_bits.map(|b| b as f64)
}

/// The constructions in chart order, with what a reader should see in the legend.
const POLICIES: [(&str, &str); 7] = [
    ("measured", "one layer, softmax, λ of Lemma 1 (Measured)"),
    ("fewest-bits", "one layer, softmax, λ > 0 chosen for fewest bits"),
    ("tuned", "one layer, softmax, smallest separating λ > 0"),
    ("theory", "one layer, softmax, Theorem 2 constants"),
    ("mean-pool", "one layer, mean pooling (λ = 0, not softmax)"),
    ("yun", "Yun et al., deep hardmax (exact, dyadic δ)"),
    ("yun-minimal", "Yun et al., deep hardmax (exact, minimal δ)"),
];

fn policy_label(p: &str) -> &str {
    POLICIES.iter().find(|(k, _)| *k == p).map_or(p, |(_, label)| label)
}

/// Every chart the result files allow, drawn from their typed rows ([`crate::rows`]); a row that does
/// not match its experiment's row type is an error naming it.
pub fn charts(results: &std::collections::BTreeMap<String, ResultFile>) -> Result<Vec<Chart>> {
    let mut out = Vec::new();
    if let Some(cap) = results.get("capacity") {
        let rows: Vec<ConstructionRow> = rows::typed("capacity", &cap.rows)?;
        // The sweep over N on generated data; rows of dataset files (`family` = `file:…`) are not on its axes.
        let generated: Vec<ConstructionRow> = rows.into_iter().filter(|r| r.family.is_none()).collect();
        capacity_charts(&generated, &mut out);
    }
    if let Some(adv) = results.get("adversarial") {
        let rows: Vec<ConstructionRow> = rows::typed("adversarial", &adv.rows)?;
        out.push(adversarial_chart(&rows));
    }
    if let Some(sep) = results.get("separation") {
        let rows: Vec<SeparationRow> = rows::typed("separation", &sep.rows)?;
        let all = |_: &SeparationRow| true;
        let r_a = |r: &SeparationRow| r.r_a;
        out.push(Chart {
            x_categories: Vec::new(),
            name: "separation".into(),
            title: "Context-id separation: measured vs Lemma 1 and Theorem 2 (−log10)".into(),
            x_label: "largest attention logit r_a = λ M²".into(),
            y_label: "−log10 separation".into(),
            x_log: true,
            y_log: true,
            series: vec![
                Series {
                    name: "measured (arbitrary precision)".into(),
                    points: series_by(&rows, all, r_a, |r| Some(-r.measured_log10)),
                    style: Style::Measured,
                },
                Series {
                    name: "Lemma 1 implied bound".into(),
                    points: series_by(&rows, all, r_a, |r| Some(-r.lemma1_implied_log10)),
                    style: Style::Formula,
                },
                Series {
                    name: "Theorem 2 δ (worst case for the same n, |V|, d, ε)".into(),
                    points: series_by(&rows, all, r_a, |r| Some(-r.theory_delta_log10)),
                    style: Style::Scatter,
                },
            ],
        });
    }
    if let Some(app) = results.get("approximation") {
        let rows: Vec<ApproximationRow> = rows::typed("approximation", &app.rows)?;
        let mut err = Vec::new();
        let mut par = Vec::new();
        let mut targets: Vec<&str> = rows.iter().map(|r| r.target.as_str()).collect();
        targets.dedup();
        for t in targets {
            let f = |r: &ApproximationRow| r.target == t;
            err.push(Series {
                name: format!("{t}: FF∘SA∘FF"),
                points: series_by(&rows, f, |r| r.delta, |r| Some(r.l2_error)),
                style: Style::Measured,
            });
            err.push(Series {
                name: format!("{t}: piecewise-constant floor"),
                points: series_by(&rows, f, |r| r.delta, |r| Some(r.l2_floor)),
                style: Style::Formula,
            });
            par.push(Series {
                name: t.to_string(),
                points: series_by(&rows, f, |r| r.params_dense as f64, |r| Some(r.l2_error)),
                style: Style::Measured,
            });
        }
        out.push(Chart {
            x_categories: Vec::new(),
            name: "approximation_vs_delta".into(),
            title: "Universal approximation (Proposition 1): L² error vs grid width δ".into(),
            x_label: "δ".into(),
            y_label: "L² error".into(),
            x_log: true,
            y_log: true,
            series: err,
        });
        out.push(Chart {
            x_categories: Vec::new(),
            name: "approximation_vs_params".into(),
            title: "Universal approximation: L² error vs parameters".into(),
            x_label: "parameters".into(),
            y_label: "L² error".into(),
            x_log: true,
            y_log: true,
            series: par,
        });
    }
    Ok(out)
}

/// Depth, parameters, precision, accuracy and latency against N.
fn capacity_charts(rows: &[ConstructionRow], out: &mut Vec<Chart>) {
    // The one-layer depth and parameter curves come from a softmax policy's rows (every one-layer
    // policy builds the same two layers; mean pooling is not the rank-1 softmax construction).
    let first_policy = ["measured", "fewest-bits", "tuned", "theory", "mean-pool"]
        .into_iter()
        .find(|p| rows.iter().any(is_policy(p)))
        .unwrap_or("measured");
    let fp = is_policy(first_policy);
    out.push(Chart {
        x_categories: Vec::new(),
        name: "depth_vs_n".into(),
        title: "Depth to memorize N sequences (n, d, |V| fixed)".into(),
        x_label: "N (sequences)".into(),
        y_label: "layers".into(),
        x_log: true,
        y_log: true,
        series: vec![
            Series {
                name: "one layer: attention + FFN (built)".into(),
                points: series_by(rows, &fp, big_n, built(|b| Some(b.layers as f64))),
                style: Style::Measured,
            },
            Series {
                name: "Yun et al., data-adaptive (built, exact, dyadic δ)".into(),
                points: series_by(rows, is_policy("yun"), big_n, built(|b| Some(b.layers as f64))),
                style: Style::Measured,
            },
            Series {
                name: "Yun et al., data-adaptive (formula)".into(),
                points: series_by(rows, &fp, big_n, one_layer(|o| o.yun_adaptive_layers)),
                style: Style::Formula,
            },
            Series {
                name: "Yun et al., full grid (formula)".into(),
                points: series_by(rows, &fp, big_n, one_layer(|o| o.yun_full_layers)),
                style: Style::Formula,
            },
            Series {
                name: "Kim et al. (reference curve)".into(),
                points: series_by(rows, &fp, big_n, one_layer(|o| o.kim_depth_reference)),
                style: Style::Formula,
            },
        ],
    });
    out.push(Chart {
        x_categories: Vec::new(),
        name: "params_vs_n".into(),
        title: "Parameters to memorize N sequences".into(),
        x_label: "N (sequences)".into(),
        y_label: "parameters".into(),
        x_log: true,
        y_log: true,
        series: vec![
            Series {
                name: format!("one layer (built, factored; {})", policy_label(first_policy)),
                points: series_by(rows, &fp, big_n, built(|b| Some(b.params_factored as f64))),
                style: Style::Measured,
            },
            Series {
                name: "Yun et al., data-adaptive (built)".into(),
                points: series_by(rows, is_policy("yun"), big_n, built(|b| Some(b.params_dense as f64))),
                style: Style::Measured,
            },
            Series {
                name: "paper: 4(s+d) + d(2nN+d)".into(),
                points: series_by(rows, &fp, big_n, one_layer(|o| o.paper_params as f64)),
                style: Style::Formula,
            },
            Series {
                name: "Yun et al., data-adaptive (formula)".into(),
                points: series_by(rows, &fp, big_n, one_layer(|o| o.yun_adaptive_params)),
                style: Style::Formula,
            },
            Series {
                name: "Kim et al. (reference curve)".into(),
                points: series_by(rows, &fp, big_n, one_layer(|o| o.kim_params_reference)),
                style: Style::Formula,
            },
            Series {
                name: "lower bound Ω(√(nN))".into(),
                points: series_by(rows, &fp, big_n, one_layer(|o| o.lower_bound_sqrt_nN)),
                style: Style::Formula,
            },
        ],
    });
    let mut precision = Vec::new();
    let mut accuracy = Vec::new();
    let mut latency = Vec::new();
    // The configured runs (backend, precision), in configuration order. Accuracy: the first run in f64 and
    // the first in f32 (another backend in the same type decodes the same tokens up to rounding order).
    // Latency: the first run of each backend other than the scalar reference (an oracle, not a contender).
    let configured: Vec<(String, String)> = rows.iter().filter_map(|r| r.built.as_ref()).fold(Vec::new(), |mut acc, b| {
        for r in &b.runs {
            let key = (r.backend.clone(), r.precision.clone());
            if !acc.contains(&key) {
                acc.push(key);
            }
        }
        acc
    });
    let accuracy_runs: Vec<&(String, String)> = ["f64", "f32"].iter().filter_map(|t| configured.iter().find(|(_, p)| p == t)).collect();
    let latency_runs: Vec<&(String, String)> = configured
        .iter()
        .enumerate()
        .filter(|(i, (b, _))| b != "reference" && !configured[..*i].iter().any(|(c, _)| c == b))
        .map(|(_, r)| r)
        .collect();
    for (p, label) in POLICIES {
        if rows.iter().any(is_policy(p)) {
            precision.push(Series {
                name: label.to_string(),
                points: series_by(rows, is_policy(p), big_n, fewest_bits),
                style: Style::Measured,
            });
            // Rows whose run failed (weights overflow the format) have no accuracy: no point, not 0.
            for (i, (backend, precision)) in accuracy_runs.iter().enumerate() {
                accuracy.push(Series {
                    name: format!("{precision} ({backend}): {label}"),
                    points: series_by(rows, is_policy(p), big_n, run_value(backend, precision, |r| r.accuracy)),
                    style: if i == 0 { Style::Measured } else { Style::Formula },
                });
            }
            latency.push(Series {
                name: format!("bigfloat at build bits: {label}"),
                points: series_by(rows, is_policy(p), big_n, built(|b| Some(b.latency_bigfloat_ms))),
                style: Style::Measured,
            });
            for (backend, precision) in &latency_runs {
                latency.push(Series {
                    name: format!("{backend} {precision}: {label}"),
                    points: series_by(rows, is_policy(p), big_n, run_value(backend, precision, |r| r.latency_ms)),
                    style: Style::Formula,
                });
            }
        }
    }
    let (xmin, xmax) = rows.iter().map(big_n).fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    precision.push(Series { name: "f64 (53 bits)".into(), points: vec![(xmin, 53.0), (xmax, 53.0)], style: Style::Formula });
    precision.push(Series { name: "f32 (24 bits)".into(), points: vec![(xmin, 24.0), (xmax, 24.0)], style: Style::Formula });
    out.push(Chart {
        x_categories: Vec::new(),
        name: "precision_vs_n".into(),
        title: "Fewest mantissa bits for exact memorization".into(),
        x_label: "N (sequences)".into(),
        y_label: "mantissa bits".into(),
        x_log: true,
        y_log: true,
        series: precision,
    });
    out.push(Chart {
        x_categories: Vec::new(),
        name: "accuracy_vs_n".into(),
        title: "Memorization accuracy in f64 and f32 (one layer vs Yun et al.)".into(),
        x_label: "N (sequences)".into(),
        y_label: "fraction of tokens decoded".into(),
        x_log: true,
        y_log: false,
        series: accuracy,
    });
    out.push(Chart {
        x_categories: Vec::new(),
        name: "latency_vs_n".into(),
        title: "Forward latency over the training set (one layer vs Yun et al.)".into(),
        x_label: "N (sequences)".into(),
        y_label: "ms per forward".into(),
        x_log: true,
        y_log: true,
        series: latency,
    });
}

/// Fewest bits per data family at the largest N, constructions side by side.
fn adversarial_chart(rows: &[ConstructionRow]) -> Chart {
    let mut families: Vec<&str> = Vec::new();
    for f in rows.iter().filter_map(|r| r.family.as_deref()) {
        if !families.contains(&f) {
            families.push(f);
        }
    }
    let largest = rows.iter().map(|r| r.sequences).max().unwrap_or(0);
    let mut series = Vec::new();
    let present: Vec<&str> = POLICIES.iter().map(|(p, _)| *p).filter(|p| rows.iter().any(is_policy(p))).collect();
    for (p, label) in POLICIES {
        if !present.contains(&p) {
            continue;
        }
        // Side by side within a family, so that equal values stay visible.
        let slot = present.iter().position(|q| *q == p).unwrap_or(0) as f64;
        let offset = 0.08 * (slot - (present.len() as f64 - 1.0) / 2.0);
        let points: Vec<(f64, f64)> = families
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let row = rows.iter().find(|r| r.sequences == largest && r.policy == p && r.family.as_deref() == Some(f))?;
                Some(((i + 1) as f64 + offset, fewest_bits(row)?))
            })
            .collect();
        series.push(Series { name: label.to_string(), points, style: Style::Scatter });
    }
    let describe = |f: &str| match f {
        "random" => "generic (random tokens)".to_string(),
        "grid" => "integer grid".to_string(),
        "pte" => "Prouhet–Tarry–Escott (d = 1)".to_string(),
        other => other.to_string(),
    };
    let (n, v) = rows.first().map_or((0, 0), |r| (r.n, r.vocab));
    Chart {
        x_categories: families.iter().map(|f| describe(f)).collect(),
        name: "adversarial_bits".into(),
        title: format!("Fewest bits on generic vs adversarial data (N = {largest}, n = {n}, |V| = {v}; no point: does not memorize)"),
        x_label: "data family".into(),
        y_label: "mantissa bits".into(),
        x_log: false,
        y_log: true,
        series,
    }
}

/// The wall-clock history (`results/bench-history.jsonl`, one JSON record per recorded run, appended by
/// `scripts/bench-track.sh --record`) as a chart: each tracked ratio against the run's index. Lines
/// that are not JSON objects with a `ratios` map are errors naming the line.
pub fn history_chart(jsonl: &str) -> Result<Chart> {
    let mut by_name: std::collections::BTreeMap<String, Vec<(f64, f64)>> = std::collections::BTreeMap::new();
    let mut runs = 0usize;
    for (i, line) in jsonl.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| anyhow::anyhow!("history line {}: {e}", i + 1))?;
        let ratios =
            v.get("ratios").and_then(Value::as_object).ok_or_else(|| anyhow::anyhow!("history line {}: no \"ratios\" object", i + 1))?;
        runs += 1;
        for (name, r) in ratios {
            // Two threads are the tracked configuration; one-thread ratios stay in the file.
            if name.ends_with("threads=1") {
                continue;
            }
            if let Some(r) = r.as_f64() {
                by_name.entry(name.clone()).or_default().push((runs as f64, r));
            }
        }
    }
    if runs == 0 {
        anyhow::bail!("the history has no runs");
    }
    Ok(Chart {
        x_categories: Vec::new(),
        name: "bench_history".into(),
        title: "Wall-clock ratios per recorded run (speedup over the reference path; Yun / one-layer build time)".into(),
        x_label: "recorded run (results/bench-history.jsonl line)".into(),
        y_label: "ratio".into(),
        x_log: false,
        y_log: true,
        series: by_name.into_iter().map(|(name, points)| Series { name, points, style: Style::Measured }).collect(),
    })
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn extreme_values_are_dropped_not_drawn_forever() {
        let pts = [(1.0, 1.7e308), (2.0, 5e-324), (3.0, 10.0), (f64::NAN, 1.0), (4.0, -1.0)];
        assert_eq!(clean(&pts, false, true), vec![(3.0, 10.0)]);
        assert_eq!(clean(&pts, false, false), vec![(2.0, 5e-324), (3.0, 10.0), (4.0, -1.0)]);
        let chart = Chart {
            x_categories: Vec::new(),
            name: "extreme".into(),
            title: "extreme".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_log: true,
            y_log: true,
            series: vec![Series { name: "s".into(), points: pts.to_vec(), style: Style::Measured }],
        };
        let dir = std::env::temp_dir().join(format!("boltz-chart-extreme-{}", std::process::id()));
        let files = draw(&chart, &dir).unwrap();
        assert!(files.iter().all(|f| f.exists()));
        assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(boltz_core::format::TEMP_MARKER)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn history_lines_become_series() {
        let text = "{\"ratios\": {\"speedup/cpu/practical/f32,threads=2\": 40.0, \"speedup/cpu/practical/f32,threads=1\": 20.0}}\n\
                    {\"ratios\": {\"speedup/cpu/practical/f32,threads=2\": 42.0}}\n";
        let chart = history_chart(text).unwrap();
        assert_eq!(chart.series.len(), 1);
        assert_eq!(chart.series[0].points, vec![(1.0, 40.0), (2.0, 42.0)]);
        assert!(history_chart("{\"x\": 1}").unwrap_err().to_string().contains("line 1"));
        assert!(history_chart("").is_err());
    }
}
