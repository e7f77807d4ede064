//! Paper-style charts drawn from result files, only ever from the JSON (so `boltz plot` can redraw them).
//!
//! A [`Chart`] is data: panels of [`Series`], each with a [`style::Look`] chosen by what the series *is*
//! (construction → colour, backend → marker, precision or formula → line; see [`style`]). Measured values
//! that are absent because a run failed are never drawn as a number: they are listed in
//! [`Series::failed`] and marked ✕. [`render::draw`] writes PNG (2×), SVG and PDF.

pub mod render;
pub mod style;

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use serde_json::Value;

pub use render::draw;
use style::{Dash, Hue, Look, Marker};

use crate::config::SuiteConfig;
use crate::experiments::ResultFile;
use crate::rows::{self, ApproximationRow, Built, ConstructionRow, OneLayerFields, SeparationRow, TrainedRow};

/// One named series of a panel.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend entry (what a reader should see, never an internal name).
    pub name: String,
    /// Colour, marker and line.
    pub look: Look,
    /// `(x, y)` points (non-finite and, on log axes, non-positive values are not drawn).
    pub points: Vec<(f64, f64)>,
    /// `(x, min, max)` whiskers (the spread of repeated measurements).
    pub spread: Vec<(f64, f64, f64)>,
    /// x positions where the measured value is absent because the run failed (drawn ✕ on the floor).
    pub failed: Vec<f64>,
    /// Points only, no joining line (values that depend on more than the x variable).
    pub scatter: bool,
}

impl Series {
    /// A measured series.
    pub fn measured(name: impl Into<String>, look: Look, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), look, points, ..Default::default() }
    }

    /// Whether this series shows measurements (it has markers) rather than a formula or bound.
    pub fn is_measured(&self) -> bool {
        self.look.marker != Marker::None
    }
}

impl Default for Look {
    fn default() -> Self {
        Look::formula(Hue::Reference)
    }
}

/// One axis.
#[derive(Clone, Debug, Default)]
pub struct Axis {
    /// Description, with the unit.
    pub label: String,
    /// Logarithmic.
    pub log: bool,
    /// A fixed range (else the data's, padded).
    pub range: Option<(f64, f64)>,
}

impl Axis {
    /// A linear axis.
    pub fn linear(label: impl Into<String>) -> Self {
        Self { label: label.into(), log: false, range: None }
    }
    /// A logarithmic axis.
    pub fn log(label: impl Into<String>) -> Self {
        Self { label: label.into(), log: true, range: None }
    }
}

/// One plot area.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// Heading (empty for a one-panel chart).
    pub title: String,
    /// X axis.
    pub x: Axis,
    /// Y axis.
    pub y: Axis,
    /// The series.
    pub series: Vec<Series>,
    /// Names of categorical x positions `1, 2, …` (empty: a numeric x axis).
    pub x_categories: Vec<String>,
    /// Spread the measured series a little sideways, so that series with equal values stay visible (the
    /// chart's subtitle says so).
    pub dodge: bool,
}

/// A chart: a title, the fixed parameters, one to four panels and one legend.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// File stem (`depth_vs_n` → `depth_vs_n.png`, `.svg`, `.pdf`).
    pub name: String,
    /// Title.
    pub title: String,
    /// Lines under the title: the fixed parameters, the seed, what one point is.
    pub subtitle: Vec<String>,
    /// The panels, side by side (four: 2 × 2).
    pub panels: Vec<Panel>,
    /// The legend text of the ✕ marks (what a failed run means here).
    pub failed_note: Option<String>,
}

impl Chart {
    /// The legend: every distinct (name, look) in panel order, with whether it is drawn without lines.
    pub fn legend_entries(&self) -> Vec<(String, Look, bool)> {
        let mut out: Vec<(String, Look, bool)> = Vec::new();
        for s in self.panels.iter().flat_map(|p| &p.series) {
            let drawn = s.points.iter().any(|p| p.0.is_finite() && p.1.is_finite()) || !s.failed.is_empty();
            if drawn && !out.iter().any(|(n, l, _)| *n == s.name && *l == s.look) {
                out.push((s.name.clone(), s.look, s.scatter));
            }
        }
        out
    }
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

/// The run of `backend` in `precision` of a built row, where it has one.
fn run_of<'a>(r: &'a ConstructionRow, backend: &str, precision: &str) -> Option<&'a rows::BackendRunRow> {
    r.built.as_ref().and_then(|b| rows::BackendRunRow::find(&b.runs, backend, precision))
}

fn fewest_bits(r: &ConstructionRow) -> Option<f64> {
    r.built.as_ref()?.bits.as_ref()?.fewest_bits.map(|b| b as f64)
}

/// The constructions in chart order, with what a reader should see in the legend.
const POLICIES: [(&str, &str); 8] = [
    ("measured", "one layer, rank-1 softmax, λ of Lemma 1 (Measured)"),
    ("fewest-bits", "one layer, rank-1 softmax, λ chosen for fewest bits"),
    ("tuned", "one layer, rank-1 softmax, smallest separating λ"),
    ("theory", "one layer, rank-1 softmax, Theorem 2 constants"),
    ("mean-pool", "one layer, mean pooling (λ = 0, not softmax)"),
    ("yun", "Yun et al., deep hardmax (dyadic δ)"),
    ("yun-minimal", "Yun et al., deep hardmax (minimal δ)"),
    ("bit-extraction", "bit extraction: 1 averaging attention + deep narrow FFN, Õ(√(nN))"),
];

fn policy_label(p: &str) -> &str {
    POLICIES.iter().find(|(k, _)| *k == p).map_or(p, |(_, label)| label)
}

fn policy_hue(p: &str) -> Hue {
    Hue::of_construction(p).unwrap_or(Hue::Slot(0))
}

/// Every chart the result files allow, drawn from their typed rows ([`crate::rows`]); a row that does
/// not match its experiment's row type is an error naming it.
pub fn charts(results: &BTreeMap<String, ResultFile>) -> Result<Vec<Chart>> {
    let mut out = Vec::new();
    if let Some(cap) = results.get("capacity") {
        let rows: Vec<ConstructionRow> = rows::typed("capacity", &cap.rows)?;
        // The sweep over N on generated data; rows of dataset files (`family` = `file:…`) are not on its axes.
        let generated: Vec<ConstructionRow> = rows.into_iter().filter(|r| r.family.is_none()).collect();
        capacity_charts(&generated, &cap.config, cap.meta.threads, &mut out);
    }
    if let Some(adv) = results.get("adversarial") {
        let rows: Vec<ConstructionRow> = rows::typed("adversarial", &adv.rows)?;
        out.push(adversarial_chart(&rows, &adv.config));
    }
    if let Some(sep) = results.get("separation") {
        let rows: Vec<SeparationRow> = rows::typed("separation", &sep.rows)?;
        out.push(separation_chart(&rows, &sep.config));
    }
    if let Some(app) = results.get("approximation") {
        let rows: Vec<ApproximationRow> = rows::typed("approximation", &app.rows)?;
        out.extend(approximation_charts(&rows, &app.config));
    }
    if let Some(tr) = results.get("trained") {
        let rows: Vec<TrainedRow> = rows::typed("trained", &tr.rows)?;
        let built = match results.get("capacity") {
            Some(cap) => rows::typed::<ConstructionRow>("capacity", &cap.rows)?.into_iter().filter(|r| r.family.is_none()).collect(),
            None => Vec::new(),
        };
        out.push(trained_chart(&rows, &tr.config, &built));
    }
    Ok(out)
}

/// The legend text of a trained model: its shape and recipe, and the family when not generic data.
fn trained_label(r: &TrainedRow) -> String {
    let attention = r.rank.map_or("full-rank".to_string(), |k| format!("rank-{k}"));
    let blocks = if r.blocks == 1 { "one layer".to_string() } else { format!("{} blocks", r.blocks) };
    let recipe = if r.warm_start { ", curriculum over N" } else { "" };
    let family = match r.family.as_str() {
        "random" => String::new(),
        "grid" => format!(" — integer-grid data (d = {})", r.d),
        "pte" => format!(" — PTE data (d = {})", r.d),
        other => format!(" — {other} data"),
    };
    format!("trained: {blocks}, {attention} attention{recipe}{family}")
}

/// Trained capacity beside the constructions (issue #19): parameters against N memorized, bits stored per
/// parameter against the 2 and 3.6 bits/parameter estimates for language models, the fewest mantissa bits
/// the memorizing model needs, and N against FFN width with the one-layer memorizer's ⌊H/n⌋.
fn trained_chart(rows: &[TrainedRow], cfg: &SuiteConfig, built_rows: &[ConstructionRow]) -> Chart {
    let t = &cfg.trained;
    // One series per (model, family), in configuration order.
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.model.as_str(), r.family.as_str())) {
            keys.push((r.model.as_str(), r.family.as_str()));
        }
    }
    let trained_series = |x: &dyn Fn(&TrainedRow) -> Option<f64>, y: &dyn Fn(&TrainedRow) -> Option<f64>| -> Vec<Series> {
        keys.iter()
            .enumerate()
            .filter_map(|(i, (m, f))| {
                let mine: Vec<&TrainedRow> = rows.iter().filter(|r| r.model == *m && r.family == *f).collect();
                let mut pts: Vec<(f64, f64)> = mine.iter().filter_map(|r| Some((x(r)?, y(r)?))).collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let first = mine.first()?;
                let marker = if first.family == "random" { Marker::Circle } else { Marker::Square };
                Some(Series {
                    scatter: true,
                    ..Series::measured(trained_label(first), Look::measured(Hue::Slot(i), marker, Dash::Solid), pts)
                })
            })
            .collect()
    };
    let memorized = |r: &TrainedRow| (r.largest_memorized > 0).then_some(r.largest_memorized as f64);
    // The constructions are on the same axes only for the same n, d and |V| on generic data.
    let c = &cfg.capacity;
    let comparable = rows.iter().any(|r| r.family == "random" && r.n == c.length && r.d == c.dim && r.vocab == c.vocab);
    let built_rows: &[ConstructionRow] = if comparable { built_rows } else { &[] };
    let softmax_policy = ["measured", "fewest-bits", "tuned", "theory"].into_iter().find(|p| built_rows.iter().any(is_policy(p)));
    let constructions: Vec<(&str, String)> = softmax_policy
        .into_iter()
        .map(|p| (p, "one-layer memorizer (built)".to_string()))
        .chain(["yun", "bit-extraction"].into_iter().map(|p| (p, format!("{} (built)", policy_label(p)))))
        .filter(|(p, _)| built_rows.iter().any(is_policy(p)))
        .collect();
    let built_series = |y: &dyn Fn(&ConstructionRow) -> Option<f64>, x: &dyn Fn(&ConstructionRow) -> f64| -> Vec<Series> {
        constructions
            .iter()
            .map(|(p, label)| {
                Series::measured(
                    label.clone(),
                    Look::measured(policy_hue(p), Marker::Circle, Dash::Solid),
                    series_by(built_rows, is_policy(p), x, y),
                )
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let params_dense = built(|b| Some(b.params_dense as f64));
    let bits_stored = |r: &ConstructionRow| Some(r.sequences as f64 * r.n as f64 / r.built.as_ref()?.params_dense as f64);

    let mut by_params = trained_series(&memorized, &|r| Some(r.params as f64));
    by_params.extend(built_series(&params_dense, &big_n));

    let mut per_param = trained_series(&|r| Some(r.params as f64), &|r| (r.bits_per_param > 0.0).then_some(r.bits_per_param));
    per_param.extend(built_series(&bits_stored, &|r| r.built.as_ref().map_or(f64::NAN, |b| b.params_dense as f64)));
    let xs: Vec<f64> = per_param.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let (lo, hi) = xs.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    if lo.is_finite() {
        per_param.push(Series {
            name: "3.6 bits/parameter (Morris et al. 2025, GPT-style models)".into(),
            look: Look::bound(Hue::Reference),
            points: vec![(lo, 3.6), (hi, 3.6)],
            ..Default::default()
        });
        per_param.push(Series {
            name: "2 bits/parameter (Allen-Zhu & Li 2024, knowledge capacity)".into(),
            look: Look { hue: Hue::Reference, marker: Marker::None, dash: Dash::Short },
            points: vec![(lo, 2.0), (hi, 2.0)],
            ..Default::default()
        });
    }

    let mut precision = trained_series(&memorized, &|r| r.fewest_bits.map(|b| b as f64));
    precision.extend(built_series(&fewest_bits, &big_n));

    let mut widths = trained_series(&|r| Some(r.ffn_width as f64), &memorized);
    let mut formula: Vec<(f64, f64)> =
        rows.iter().filter(|r| r.family == "random").map(|r| (r.ffn_width as f64, r.construction_sequences_at_width as f64)).collect();
    formula.sort_by(|a, b| a.0.total_cmp(&b.0));
    formula.dedup();
    widths.push(Series {
        name: "one-layer memorizer at FFN width H: ⌊H/n⌋ sequences (one unit per context id, K ≤ nN)".into(),
        look: Look::formula(Hue::Measured),
        points: formula,
        ..Default::default()
    });

    let none: Vec<String> =
        rows.iter().filter(|r| r.largest_memorized == 0).map(|r| format!("{} at H = {}", trained_label(r), r.ffn_width)).collect();
    let mut subtitle = vec![
        format!(
            "n = {}, |V| = {}, 2 label classes, seed {}; one head of size d; full-batch Adam, {} steps, lr {}, init seeds {:?}; N doubles from 1, then bisects (≤ {})",
            t.length, t.vocab, cfg.seed, t.steps, t.lr, t.seeds, t.max_sequences
        ),
        "a trained point: the largest N memorized at 100 % token accuracy (confirmed on the reference backend); parameters counted dense, as the constructions'".into(),
        "N against width: models with equal N at one width are dodged sideways so that each stays visible".into(),
    ];
    if !comparable {
        subtitle.push("the capacity sweep has other n, d or |V| (or did not run): constructions not drawn".into());
    }
    if !none.is_empty() {
        subtitle.push(format!("not drawn (memorized not even N = 1): {}", none.join("; ")));
    }
    Chart {
        name: "trained_capacity".into(),
        title: "What training finds, beside the constructions".into(),
        subtitle,
        panels: vec![
            Panel {
                title: "Parameters against N memorized".into(),
                x: Axis::log("N (sequences)"),
                y: Axis::log("parameters (dense)"),
                series: by_params,
                ..Default::default()
            },
            Panel {
                title: "Bits stored per parameter".into(),
                x: Axis::log("parameters (dense)"),
                y: Axis::log("N·n·log₂(classes) / parameters"),
                series: per_param,
                ..Default::default()
            },
            Panel {
                title: "Fewest mantissa bits of the memorizing model".into(),
                x: Axis::log("N (sequences)"),
                y: Axis::log("mantissa bits"),
                series: precision,
                ..Default::default()
            },
            Panel {
                title: "N memorized against FFN width".into(),
                x: Axis::log("FFN width H"),
                y: Axis::log("N (sequences)"),
                series: widths,
                dodge: true,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// The capacity sweep's fixed parameters.
fn capacity_subtitle(cfg: &SuiteConfig) -> String {
    let c = &cfg.capacity;
    format!(
        "n = {}, d = {}, |V| = {} generic tokens, 2 label classes, seed {}; one generated dataset per N",
        c.length, c.dim, c.vocab, cfg.seed
    )
}

/// `reference` scaled by the factor that makes it meet `anchor` at the first x both have (a reference
/// curve with arbitrary constants: only its shape means something).
fn scaled_to_meet(reference: &[(f64, f64)], anchor: &[(f64, f64)]) -> Option<(Vec<(f64, f64)>, f64)> {
    let (x0, a0) = anchor.iter().copied().find(|(x, _)| reference.iter().any(|(rx, _)| rx == x))?;
    let r0 = reference.iter().find(|(rx, _)| *rx == x0)?.1;
    (r0 > 0.0 && a0 > 0.0).then(|| (reference.iter().map(|&(x, y)| (x, y * a0 / r0)).collect(), x0))
}

/// Depth, parameters, precision, accuracy, latency and attention rank against N.
fn capacity_charts(rows: &[ConstructionRow], cfg: &SuiteConfig, threads: usize, out: &mut Vec<Chart>) {
    let fixed = capacity_subtitle(cfg);
    // The one-layer depth and parameter curves come from a softmax policy's rows (every one-layer
    // policy builds the same two layers; mean pooling is not the rank-1 softmax construction).
    let softmax_policy = ["measured", "fewest-bits", "tuned", "theory"].into_iter().find(|p| rows.iter().any(is_policy(p)));
    let first_policy = softmax_policy.unwrap_or("mean-pool");
    let fp = is_policy(first_policy);
    let one_layer_name = |what: &str| format!("{} — built, {what}", policy_label(first_policy));
    let yun_built = series_by(rows, is_policy("yun"), big_n, built(|b| Some(b.layers as f64)));
    let kim_depth = series_by(rows, &fp, big_n, one_layer(|o| o.kim_depth_reference));
    let mut depth = vec![
        Series::measured(
            one_layer_name("attention + FFN"),
            Look::measured(policy_hue(first_policy), Marker::Circle, Dash::Solid),
            series_by(rows, &fp, big_n, built(|b| Some(b.layers as f64))),
        ),
        Series::measured(
            "Yun et al., data-adaptive (built, exact)",
            Look::measured(Hue::Yun, Marker::Circle, Dash::Solid),
            yun_built.clone(),
        ),
        Series {
            name: "Yun et al., data-adaptive (formula; the built model has exactly 1 layer more)".into(),
            look: Look::formula(Hue::Yun),
            points: series_by(rows, &fp, big_n, one_layer(|o| o.yun_adaptive_layers)),
            ..Default::default()
        },
        Series {
            name: "Yun et al., full grid: δ⁻ᵈ + 1 attention layers (formula)".into(),
            look: Look::bound(Hue::Yun),
            points: series_by(rows, &fp, big_n, one_layer(|o| o.yun_full_layers)),
            ..Default::default()
        },
    ];
    let bx = is_policy("bit-extraction");
    let bx_depth = series_by(rows, &bx, big_n, built(|b| Some(b.layers as f64)));
    if !bx_depth.is_empty() {
        depth.push(Series::measured(
            "bit extraction, Õ(√(nN)) parameters (built, exact)",
            Look::measured(Hue::Kim, Marker::Circle, Dash::Solid),
            bx_depth,
        ));
    }
    if let Some((pts, x0)) = scaled_to_meet(&kim_depth, &yun_built) {
        depth.push(Series {
            name: format!("Kim et al. depth, shape only (constants unknown; scaled to meet Yun et al. at N = {x0})"),
            look: Look::formula(Hue::Kim),
            points: pts,
            ..Default::default()
        });
    }
    out.push(Chart {
        name: "depth_vs_n".into(),
        title: "Depth to memorize N sequences".into(),
        subtitle: vec![fixed.clone()],
        panels: vec![Panel { x: Axis::log("N (sequences)"), y: Axis::log("layers"), series: depth, ..Default::default() }],
        ..Default::default()
    });

    let one_layer_params = series_by(rows, &fp, big_n, built(|b| Some(b.params_factored as f64)));
    let mut params = vec![
        Series::measured(
            one_layer_name("rank-1 weights as factors"),
            Look::measured(policy_hue(first_policy), Marker::Circle, Dash::Solid),
            one_layer_params.clone(),
        ),
        Series::measured(
            "Yun et al., data-adaptive (built, dense)",
            Look::measured(Hue::Yun, Marker::Circle, Dash::Solid),
            series_by(rows, is_policy("yun"), big_n, built(|b| Some(b.params_dense as f64))),
        ),
        Series {
            name: "paper's count 4(s+d) + d(2nN+d)".into(),
            look: Look::formula(policy_hue(first_policy)),
            points: series_by(rows, &fp, big_n, one_layer(|o| o.paper_params as f64)),
            ..Default::default()
        },
        Series {
            name: "Yun et al., data-adaptive (formula; under the built curve where they agree)".into(),
            look: Look::formula(Hue::Yun),
            points: series_by(rows, &fp, big_n, one_layer(|o| o.yun_adaptive_params)),
            ..Default::default()
        },
    ];
    let bx_params = series_by(rows, &bx, big_n, built(|b| Some(b.params_dense as f64)));
    if !bx_params.is_empty() {
        params.push(Series::measured(
            "bit extraction, Õ(√(nN)) (built, dense)",
            Look::measured(Hue::Kim, Marker::Circle, Dash::Solid),
            bx_params,
        ));
        params.push(Series::measured(
            "bit extraction (built, non-zero entries)",
            Look::measured(Hue::Kim, Marker::Circle, Dash::Dotted),
            series_by(rows, &bx, big_n, built(|b| b.bit_extraction.as_ref().map(|x| x.params_nonzero as f64))),
        ));
        if one_layer_params.is_empty() {
            // A run without the one-layer model: its exact count at the same ids, for the comparison.
            params.push(Series {
                name: "one-layer memorizer at the same K = nN ids: K(d + 2) + 2d + 4(1 + d) (its count, not built here)".into(),
                look: Look::formula(Hue::Measured),
                points: series_by(rows, &bx, big_n, |r| {
                    r.built.as_ref()?.bit_extraction.as_ref().map(|x| (x.one_layer_ffn_params + 4 * (1 + r.d as u64)) as f64)
                }),
                ..Default::default()
            });
        }
    }
    let kim_params = series_by(rows, &fp, big_n, one_layer(|o| o.kim_params_reference));
    if let Some((pts, x0)) = scaled_to_meet(&kim_params, &one_layer_params) {
        params.push(Series {
            name: format!("Kim et al. Õ(d + n + √(nN)), shape only (scaled to meet the one-layer model at N = {x0})"),
            look: Look::formula(Hue::Kim),
            points: pts,
            ..Default::default()
        });
    }
    let lower = series_by(rows, &fp, big_n, one_layer(|o| o.lower_bound_sqrt_nN));
    if let Some((pts, x0)) = scaled_to_meet(&lower, &one_layer_params) {
        params.push(Series {
            name: format!("lower bound Ω(√(nN)), shape only (scaled to meet the one-layer model at N = {x0})"),
            look: Look::bound(Hue::Reference),
            points: pts,
            ..Default::default()
        });
    }
    out.push(Chart {
        name: "params_vs_n".into(),
        title: "Parameters to memorize N sequences".into(),
        subtitle: vec![fixed.clone()],
        panels: vec![Panel { x: Axis::log("N (sequences)"), y: Axis::log("parameters"), series: params, ..Default::default() }],
        ..Default::default()
    });

    // Precision: every construction's fewest bits, where it was bisected; the formats as dotted limits over
    // the same N range.
    let mut precision = Vec::new();
    for (p, label) in POLICIES {
        let pts = series_by(rows, is_policy(p), big_n, fewest_bits);
        if !pts.is_empty() {
            precision.push(Series::measured(label, Look::measured(policy_hue(p), Marker::Circle, Dash::Solid), pts));
        }
    }
    let bisected: Vec<f64> = precision.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let (xmin, xmax) = bisected.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    if xmin.is_finite() {
        precision.push(Series {
            name: "f64: 53 bits".into(),
            look: Look::bound(Hue::Reference),
            points: vec![(xmin, 53.0), (xmax, 53.0)],
            ..Default::default()
        });
        precision.push(Series {
            name: "f32: 24 bits".into(),
            look: Look { hue: Hue::Reference, marker: Marker::None, dash: Dash::Short },
            points: vec![(xmin, 24.0), (xmax, 24.0)],
            ..Default::default()
        });
    }
    out.push(Chart {
        name: "precision_vs_n".into(),
        title: "Fewest mantissa bits for exact memorization".into(),
        subtitle: vec![
            fixed.clone(),
            format!(
                "searched in arbitrary precision (every operation rounded to p bits) for N ≤ {}{}; the one-layer model trades depth for bits",
                cfg.capacity.bisect_max_sequences,
                cfg.capacity
                    .bisect_max_sequences_by_policy
                    .iter()
                    .map(|(p, n)| format!(", {p} N ≤ {n}"))
                    .collect::<String>()
            ),
            "points of different constructions at one N are dodged sideways so that equal values stay visible".into(),
        ],
        panels: vec![Panel {
            x: Axis::log("N (sequences)"),
            y: Axis::log("mantissa bits"),
            series: precision,
            dodge: true,
            ..Default::default()
        }],
        ..Default::default()
    });

    // The configured runs (backend, precision), in configuration order.
    let configured: Vec<(String, String)> = rows.iter().filter_map(|r| r.built.as_ref()).fold(Vec::new(), |mut acc, b| {
        for r in &b.runs {
            let key = (r.backend.clone(), r.precision.clone());
            if !acc.contains(&key) {
                acc.push(key);
            }
        }
        acc
    });
    // Accuracy: one panel per hardware type, from its first configured run (another backend in the same
    // type decodes the same tokens up to rounding order).
    let mut panels = Vec::new();
    for t in ["f64", "f32"] {
        let Some((backend, _)) = configured.iter().find(|(_, p)| p == t) else { continue };
        let mut series = Vec::new();
        for (p, label) in POLICIES {
            let these: Vec<&ConstructionRow> = rows.iter().filter(|r| r.policy == p && r.built.is_some()).collect();
            if these.is_empty() {
                continue;
            }
            let mut s = Series::measured(label, Look::measured(policy_hue(p), Marker::of_backend(backend), Dash::Solid), Vec::new());
            for r in these {
                if let Some(run) = run_of(r, backend, t) {
                    match run.accuracy {
                        Some(a) => s.points.push((big_n(r), a)),
                        None => s.failed.push(big_n(r)),
                    }
                }
            }
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            series.push(s);
        }
        panels.push(Panel {
            title: format!("{t} ({} bits), {backend} backend", if t == "f64" { 53 } else { 24 }),
            x: Axis::log("N (sequences)"),
            y: Axis { label: "fraction of tokens decoded".into(), log: false, range: Some((-0.02, 1.05)) },
            series,
            dodge: true,
            ..Default::default()
        });
    }
    out.push(Chart {
        name: "accuracy_vs_n".into(),
        title: "Memorization accuracy when the exact model is rounded to f64 and f32".into(),
        subtitle: vec![
            fixed.clone(),
            "weights, inputs and arithmetic in the format; a token decodes when every coordinate is within ½ of its target; points dodged sideways".into(),
        ],
        panels,
        failed_note: Some("does not fit: a weight or an activation overflows the format (no accuracy; not 0)".into()),
    });

    // Latency: every configured run except the scalar reference (an oracle, not a contender), with its
    // spread; the arbitrary-precision verification at each model's own build bits.
    let mut latency = Vec::new();
    for (p, label) in POLICIES {
        let these: Vec<&ConstructionRow> = rows.iter().filter(|r| r.policy == p && r.built.is_some()).collect();
        if these.is_empty() {
            continue;
        }
        for (backend, precision) in configured.iter().filter(|(b, _)| b != "reference") {
            let mut s = Series::measured(
                format!("{backend} {precision}: {label}"),
                Look::measured(policy_hue(p), Marker::of_backend(backend), Dash::of_precision(precision)),
                Vec::new(),
            );
            for r in &these {
                let Some(run) = run_of(r, backend, precision) else { continue };
                match run.latency_ms {
                    Some(t) => {
                        s.points.push((big_n(r), t));
                        if let (Some(lo), Some(hi)) = (run.latency_min_ms, run.latency_max_ms) {
                            s.spread.push((big_n(r), lo, hi));
                        }
                    }
                    None => s.failed.push(big_n(r)),
                }
            }
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            latency.push(s);
        }
        let bits: Vec<u64> = these.iter().filter_map(|r| r.built.as_ref().map(|b| b.build_bits)).collect();
        let (lo, hi) = (bits.iter().min().copied().unwrap_or(0), bits.iter().max().copied().unwrap_or(0));
        let bits = if lo == hi { format!("{lo} bits") } else { format!("{lo}–{hi} bits") };
        latency.push(Series::measured(
            format!("bigfloat at the build precision ({bits}; one run): {label}"),
            Look::measured(policy_hue(p), Marker::Triangle, Dash::Dotted),
            series_by(rows, is_policy(p), big_n, built(|b| Some(b.latency_bigfloat_ms))),
        ));
    }
    let repeats = rows.iter().filter_map(|r| r.built.as_ref()).flat_map(|b| &b.runs).filter_map(|r| r.repeats).max();
    out.push(Chart {
        name: "latency_vs_n".into(),
        title: "Forward latency over the whole training set".into(),
        subtitle: vec![
            fixed.clone(),
            match repeats {
                Some(k) => format!(
                    "one point = one batched forward over all N sequences (N·n tokens), median of {k}; bars: min–max; {threads} threads"
                ),
                None => "one point = one batched forward over all N sequences (N·n tokens), a single run (files before repeats)".into(),
            },
        ],
        panels: vec![Panel { x: Axis::log("N (sequences)"), y: Axis::log("ms per forward"), series: latency, ..Default::default() }],
        failed_note: Some("no run: the model does not fit the format".into()),
    });

    // Attention rank, where recorded (builds with the blas feature): one category per construction, the
    // rank at the largest N with whiskers over every N (ranks do not depend on the x axis, so a line per
    // construction would hide the others).
    let short = |p: &str| match p {
        "measured" => "one layer,\nMeasured λ".to_string(),
        "fewest-bits" => "one layer,\nλ for fewest bits".to_string(),
        "tuned" => "one layer,\nsmallest λ".to_string(),
        "theory" => "one layer,\nTheorem 2 λ".to_string(),
        "mean-pool" => "one layer,\nmean pooling".to_string(),
        "yun" => "Yun et al.,\ndyadic δ".to_string(),
        "yun-minimal" => "Yun et al.,\nminimal δ".to_string(),
        other => other.to_string(),
    };
    let mut categories = Vec::new();
    let mut rank = Vec::new();
    for (p, label) in POLICIES {
        let ranked: Vec<(f64, rows::AttentionRank)> =
            rows.iter().filter(|r| r.policy == p).filter_map(|r| Some((big_n(r), r.built.as_ref()?.attention_rank?))).collect();
        let Some(&(_, at_largest)) = ranked.iter().max_by(|a, b| a.0.total_cmp(&b.0)) else { continue };
        categories.push(short(p));
        let x = categories.len() as f64;
        for (name, marker, offset, value) in [
            ("W_Kᵀ W_Q", Marker::Circle, -0.12, (|a: &rows::AttentionRank| a.rank_key_query_max) as fn(&rows::AttentionRank) -> usize),
            ("W_Vᵀ W_Oᵀ", Marker::Diamond, 0.12, |a: &rows::AttentionRank| a.rank_value_output_max),
        ] {
            let values: Vec<f64> = ranked.iter().map(|(_, a)| value(a) as f64).collect();
            let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            rank.push(Series {
                scatter: true,
                spread: if lo < hi { vec![(x + offset, lo, hi)] } else { Vec::new() },
                ..Series::measured(
                    format!("{label}: {name}"),
                    Look::measured(policy_hue(p), marker, Dash::Solid),
                    vec![(x + offset, value(&at_largest) as f64)],
                )
            });
        }
    }
    if !rank.is_empty() {
        let d = cfg.capacity.dim as f64;
        let k = categories.len() as f64;
        rank.push(Series {
            name: format!("full rank d = {}", cfg.capacity.dim),
            look: Look::bound(Hue::Reference),
            points: vec![(0.5, d), (k + 0.5, d)],
            ..Default::default()
        });
        let largest = rows.iter().map(|r| r.sequences).max().unwrap_or(0);
        out.push(Chart {
            name: "attention_rank".into(),
            title: "Rank of the attention products (largest over the model's heads)".into(),
            subtitle: vec![
                fixed,
                format!(
                    "at N = {largest} (whiskers: the range over every N); ● W_Kᵀ W_Q, ◆ W_Vᵀ W_Oᵀ, d × d; numerical rank by SVD (LAPACK, f64; σ > max(rows, cols)·ε·σ₁)"
                ),
            ],
            panels: vec![Panel {
                x: Axis::linear("construction"),
                y: Axis { label: "numerical rank".into(), log: false, range: Some((-0.3, d + 0.6)) },
                series: rank,
                x_categories: categories,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
}

/// Fewest bits per data family at the largest N, constructions side by side.
fn adversarial_chart(rows: &[ConstructionRow], cfg: &SuiteConfig) -> Chart {
    let mut families: Vec<&str> = Vec::new();
    for f in rows.iter().filter_map(|r| r.family.as_deref()) {
        if !families.contains(&f) {
            families.push(f);
        }
    }
    let largest = rows.iter().map(|r| r.sequences).max().unwrap_or(0);
    let present: Vec<&str> = POLICIES.iter().map(|(p, _)| *p).filter(|p| rows.iter().any(is_policy(p))).collect();
    let mut series = Vec::new();
    for (p, label) in POLICIES {
        let Some(slot) = present.iter().position(|q| *q == p) else { continue };
        // Side by side within a family, so that equal values stay visible.
        let offset = 0.1 * (slot as f64 - (present.len() as f64 - 1.0) / 2.0);
        let mut s =
            Series { scatter: true, ..Series::measured(label, Look::measured(policy_hue(p), Marker::Circle, Dash::Solid), Vec::new()) };
        for (i, f) in families.iter().enumerate() {
            let Some(row) = rows.iter().find(|r| r.sequences == largest && r.policy == p && r.family.as_deref() == Some(f)) else {
                continue;
            };
            match fewest_bits(row) {
                Some(b) => s.points.push(((i + 1) as f64 + offset, b)),
                None => s.failed.push((i + 1) as f64 + offset),
            }
        }
        series.push(s);
    }
    let describe = |f: &str| match f {
        "random" => "generic (random tokens)".to_string(),
        "grid" => "integer grid".to_string(),
        "pte" => "Prouhet–Tarry–Escott (d = 1)".to_string(),
        other => other.to_string(),
    };
    let a = &cfg.adversarial;
    let dims: Vec<String> = a.families.iter().map(|f| format!("{}: d = {}", f.kind, f.dim)).collect();
    Chart {
        name: "adversarial_bits".into(),
        title: "Fewest bits on generic vs adversarial data".into(),
        subtitle: vec![
            format!("N = {largest}, n = {}, |V| = {}, seed {}; {}", a.length, a.vocab, cfg.seed, dims.join(", ")),
            "grid and PTE data have equal token sums, where mean pooling (λ = 0) collides and softmax needs λ > 0".into(),
        ],
        panels: vec![Panel {
            x: Axis::linear("data family"),
            y: Axis::log("mantissa bits"),
            series,
            x_categories: families.iter().map(|f| describe(f)).collect(),
            ..Default::default()
        }],
        failed_note: Some("does not memorize (mean pooling: two contexts collide; no bits suffice)".into()),
    }
}

/// The separation of context ids per (n, |V|, d) configuration: measured against Lemma 1's implied bound
/// (left) and Theorem 2's worst-case δ (right, digits on a log axis).
fn separation_chart(rows: &[SeparationRow], cfg: &SuiteConfig) -> Chart {
    let categories: Vec<String> = rows.iter().map(|r| format!("{}·{}·{}", r.n, r.vocab, r.d)).collect();
    let at =
        |f: &dyn Fn(&SeparationRow) -> f64| -> Vec<(f64, f64)> { rows.iter().enumerate().map(|(i, r)| ((i + 1) as f64, f(r))).collect() };
    let left = vec![
        Series {
            scatter: true,
            ..Series::measured(
                "measured smallest gap (arbitrary precision)",
                Look::measured(Hue::Measured, Marker::Circle, Dash::Solid),
                at(&|r| r.measured_log10),
            )
        },
        Series {
            scatter: true,
            ..Series::measured(
                "Lemma 1's implied lower bound for the same λ",
                Look::measured(Hue::Reference, Marker::Square, Dash::Dotted),
                at(&|r| r.lemma1_implied_log10),
            )
        },
    ];
    let right = vec![Series {
        scatter: true,
        ..Series::measured(
            "Theorem 2's worst-case δ (same n, |V|, d): digits −log10 δ",
            Look::measured(Hue::Theory, Marker::Triangle, Dash::Solid),
            at(&|r| -r.theory_delta_log10),
        )
    }];
    Chart {
        name: "separation".into(),
        title: "Context-id separation of the rank-1 attention layer (Theorem 2, Lemma 1)".into(),
        subtitle: vec![
            format!(
                "Measured policy, up to {} sequences per configuration, seed {}; higher on the left = better separated",
                cfg.separation.sequences, cfg.seed
            ),
            "each configuration is its own dataset: points are not joined".into(),
        ],
        panels: vec![
            Panel {
                title: "measured vs Lemma 1 (measured must lie above)".into(),
                x: Axis::linear("configuration n·|V|·d"),
                y: Axis::linear("log10 of the smallest gap between ids"),
                series: left,
                x_categories: categories.clone(),
                dodge: false,
            },
            Panel {
                title: "Theorem 2's δ".into(),
                x: Axis::linear("configuration n·|V|·d"),
                y: Axis::log("decimal digits, −log10 δ"),
                series: right,
                x_categories: categories,
                dodge: false,
            },
        ],
        ..Default::default()
    }
}

fn approximation_charts(rows: &[ApproximationRow], cfg: &SuiteConfig) -> Vec<Chart> {
    let mut err = Vec::new();
    let mut par = Vec::new();
    let mut targets: Vec<&str> = Vec::new();
    for r in rows {
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
    }
    for (i, t) in targets.iter().enumerate() {
        let f = |r: &ApproximationRow| r.target == *t;
        err.push(Series::measured(
            format!("{t}: FF∘SA∘FF (built)"),
            Look::measured(Hue::Slot(i), Marker::Circle, Dash::Solid),
            series_by(rows, f, |r| r.delta, |r| Some(r.l2_error)),
        ));
        err.push(Series {
            name: format!("{t}: best piecewise-constant error on the same grid"),
            look: Look::formula(Hue::Slot(i)),
            points: series_by(rows, f, |r| r.delta, |r| Some(r.l2_floor)),
            ..Default::default()
        });
        par.push(Series::measured(
            format!("{t}: FF∘SA∘FF (built)"),
            Look::measured(Hue::Slot(i), Marker::Circle, Dash::Solid),
            series_by(rows, f, |r| r.params_dense as f64, |r| Some(r.l2_error)),
        ));
    }
    let a = &cfg.approximation;
    let sub = vec![format!("n = {}, d = 1, {} random inputs for the L² error, seed {}", a.length, a.samples, cfg.seed)];
    vec![
        Chart {
            name: "approximation_vs_delta".into(),
            title: "Universal approximation (Proposition 1): L² error vs grid width δ".into(),
            subtitle: sub.clone(),
            panels: vec![Panel { x: Axis::log("δ (grid cell width)"), y: Axis::log("L² error"), series: err, ..Default::default() }],
            ..Default::default()
        },
        Chart {
            name: "approximation_vs_params".into(),
            title: "Universal approximation: L² error vs parameters".into(),
            subtitle: sub,
            panels: vec![Panel { x: Axis::log("parameters (dense)"), y: Axis::log("L² error"), series: par, ..Default::default() }],
            ..Default::default()
        },
    ]
}

/// One recorded run of `scripts/bench-track.sh --record`.
struct HistoryRun {
    label: String,
    ratios: BTreeMap<String, f64>,
    gflops: BTreeMap<String, f64>,
}

fn parse_history(jsonl: &str) -> Result<Vec<HistoryRun>> {
    let mut runs = Vec::new();
    for (i, line) in jsonl.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| anyhow!("history line {}: {e}", i + 1))?;
        let ratios = v.get("ratios").and_then(Value::as_object).ok_or_else(|| anyhow!("history line {}: no \"ratios\" object", i + 1))?;
        let rev = v.get("git_rev").and_then(Value::as_str).unwrap_or("?");
        let dirty = if v.get("dirty").and_then(Value::as_bool) == Some(true) { "+" } else { "" };
        let date = v.get("time").and_then(Value::as_str).map_or("", |t| t.get(5..10).unwrap_or(""));
        let gflops = v
            .get("benches")
            .and_then(Value::as_object)
            .map(|b| b.iter().filter_map(|(k, e)| Some((k.clone(), e.get("gflops")?.as_f64()?))).collect())
            .unwrap_or_default();
        runs.push(HistoryRun {
            label: format!("{rev}{dirty}\n{date}"),
            ratios: ratios.iter().filter_map(|(k, r)| Some((k.clone(), r.as_f64()?))).collect(),
            gflops,
        });
    }
    if runs.is_empty() {
        anyhow::bail!("the history has no runs");
    }
    Ok(runs)
}

/// The committed ratio baseline (`results/bench-baselines/ratios.json`): ratios and the `lower` factor
/// below which `scripts/bench-track.sh` fails.
pub struct Baseline {
    /// Ratio name → committed value.
    pub ratios: BTreeMap<String, f64>,
    /// The failing factor (0.33: a 3× loss).
    pub lower: f64,
}

impl Baseline {
    /// Reads the baseline JSON.
    pub fn parse(text: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text)?;
        let ratios = v.get("ratios").and_then(Value::as_object).ok_or_else(|| anyhow!("no \"ratios\" object"))?;
        Ok(Self {
            ratios: ratios.iter().filter_map(|(k, r)| Some((k.clone(), r.as_f64()?))).collect(),
            lower: v.get("lower").and_then(Value::as_f64).ok_or_else(|| anyhow!("no \"lower\" factor"))?,
        })
    }
}

/// `speedup/<backend>/<workload>/<dtype>,threads=<t>` → its parts.
fn speedup_parts(name: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = name.strip_prefix("speedup/")?;
    let mut it = rest.splitn(3, '/');
    let (backend, workload, tail) = (it.next()?, it.next()?, it.next()?);
    let (dtype, threads) = tail.split_once(",threads=")?;
    Some((backend, workload, dtype, threads))
}

/// The wall-clock history (`results/bench-history.jsonl`) as a chart: every tracked ratio divided by its
/// committed baseline, one panel per workload (and the build ratio), over the recorded runs labelled by
/// commit and date, with the baseline (1) and the failing threshold (`lower`). Two threads are the
/// tracked configuration (one-thread ratios stay in the file).
pub fn history_chart(jsonl: &str, baseline: &Baseline) -> Result<Chart> {
    let runs = parse_history(jsonl)?;
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    let names: Vec<String> = {
        let mut v: Vec<String> = runs.iter().flat_map(|r| r.ratios.keys().cloned()).collect();
        v.sort();
        v.dedup();
        v.into_iter().filter(|n| !n.ends_with("threads=1")).collect()
    };
    let mut groups: Vec<String> = names.iter().map(|n| speedup_parts(n).map_or("build".to_string(), |p| p.1.to_string())).collect();
    groups.dedup();
    let mut seen = std::collections::BTreeSet::new();
    groups.retain(|g| seen.insert(g.clone()));
    let backends: Vec<&str> = {
        let mut b: Vec<&str> = names.iter().filter_map(|n| speedup_parts(n).map(|p| p.0)).collect();
        b.sort();
        b.dedup();
        b
    };
    let mut panels = Vec::new();
    for g in &groups {
        let mut series = Vec::new();
        for n in names.iter().filter(|n| speedup_parts(n).map_or("build", |p| p.1) == g) {
            let Some(base) = baseline.ratios.get(n).copied().filter(|b| *b > 0.0) else { continue };
            let (name, look) = match speedup_parts(n) {
                Some((backend, _, dtype, _)) => (
                    format!("{backend} {dtype}"),
                    Look::measured(
                        Hue::Slot(backends.iter().position(|b| *b == backend).unwrap_or(0)),
                        Marker::of_backend(backend),
                        Dash::of_precision(dtype),
                    ),
                ),
                None => ("Yun et al. build time / one-layer build time".to_string(), Look::measured(Hue::Yun, Marker::Circle, Dash::Solid)),
            };
            let points: Vec<(f64, f64)> =
                runs.iter().enumerate().filter_map(|(i, r)| Some(((i + 1) as f64, r.ratios.get(n)? / base))).collect();
            series.push(Series::measured(name, look, points));
        }
        let k = runs.len() as f64;
        series.push(Series {
            name: "committed baseline (1)".into(),
            look: Look::formula(Hue::Reference),
            points: vec![(0.5, 1.0), (k + 0.5, 1.0)],
            ..Default::default()
        });
        series.push(Series {
            name: format!("check fails below {} × baseline", baseline.lower),
            look: Look::bound(Hue::Reference),
            points: vec![(0.5, baseline.lower), (k + 0.5, baseline.lower)],
            ..Default::default()
        });
        panels.push(Panel {
            title: if g == "build" { "build: Yun et al. / one layer".into() } else { format!("{g}: speedup over the reference path") },
            x: Axis::linear("recorded run (commit, date; + = uncommitted changes)"),
            y: Axis::log("ratio / committed baseline"),
            series,
            x_categories: labels.clone(),
            dodge: true,
        });
    }
    Ok(Chart {
        name: "bench_history".into(),
        title: "Wall-clock ratios over recorded runs, relative to the committed baseline".into(),
        subtitle: vec![
            "results/bench-history.jsonl (scripts/bench-track.sh --record), 2 threads; ratios survive noisy machines better than times"
                .into(),
        ],
        panels,
        ..Default::default()
    })
}

/// Throughput of every backend, workload and type at 2 threads in the latest recorded run, against the
/// machine's own ceiling (`results/backends/gemm-ceiling.json`, written by the `gemm_ceiling` example of
/// `boltz-blas`): each point is its GFLOP/s as a percentage of the measured FMA peak of its element type
/// (issue #30), and OpenBLAS's sgemm and dgemm at n = 1024 are drawn as lines at their own percentage.
/// A ceiling file without the peak (older files) gives the GFLOP/s chart against OpenBLAS alone.
pub fn throughput_chart(jsonl: &str, ceiling: &str) -> Result<Chart> {
    let runs = parse_history(jsonl)?;
    let last = runs.last().ok_or_else(|| anyhow!("the history has no runs"))?;
    let c: Value = serde_json::from_str(ceiling)?;
    let row = c
        .get("rows")
        .and_then(Value::as_array)
        .and_then(|rows| rows.iter().find(|r| r.get("threads").and_then(Value::as_u64) == Some(2)))
        .ok_or_else(|| anyhow!("the GEMM ceiling has no row for 2 threads"))?;
    let num = |key: &str| row.get(key).and_then(Value::as_f64);
    let (sgemm, dgemm) =
        (num("sgemm_gflops").ok_or_else(|| anyhow!("no sgemm_gflops"))?, num("dgemm_gflops").ok_or_else(|| anyhow!("no dgemm_gflops"))?);
    let peak = match (num("fma_peak_gflops_f32"), num("fma_peak_gflops_f64")) {
        (Some(f32_peak), Some(f64_peak)) if f32_peak > 0.0 && f64_peak > 0.0 => Some((f32_peak, f64_peak)),
        (None, None) => None,
        _ => anyhow::bail!("the ceiling's 2-thread row has an incomplete or non-positive FMA peak"),
    };
    let isa = row.get("isa").and_then(Value::as_str).unwrap_or("?");
    // The value drawn for `gflops` of `dtype`: % of that type's peak, or GFLOP/s without a peak.
    let scale = |dtype: &str, g: f64| match peak {
        Some((p32, p64)) => 100.0 * g / if dtype == "f32" { p32 } else { p64 },
        None => g,
    };
    // forward/<backend>/<workload>/<dtype>,batch=<b>,threads=2
    let mut entries: Vec<(String, String, String, f64)> = Vec::new();
    for (k, g) in &last.gflops {
        let Some(rest) = k.strip_prefix("forward/") else { continue };
        let parts: Vec<&str> = rest.splitn(3, '/').collect();
        let [backend, workload, tail] = parts[..] else { continue };
        let Some((dtype, _)) = tail.split_once(",batch=") else { continue };
        if tail.ends_with("threads=2") && backend != "reference" {
            entries.push((backend.into(), workload.into(), dtype.into(), scale(dtype, *g)));
        }
    }
    let mut workloads: Vec<String> = entries.iter().map(|e| e.1.clone()).collect();
    workloads.sort();
    workloads.dedup();
    let mut keys: Vec<(String, String)> = entries.iter().map(|e| (e.0.clone(), e.2.clone())).collect();
    keys.sort();
    keys.dedup();
    let mut series = Vec::new();
    for (slot, (backend, dtype)) in keys.iter().enumerate() {
        let offset = 0.08 * (slot as f64 - (keys.len() as f64 - 1.0) / 2.0);
        let points = entries
            .iter()
            .filter(|e| e.0 == *backend && e.2 == *dtype)
            .filter_map(|e| Some(((workloads.iter().position(|w| *w == e.1)? + 1) as f64 + offset, e.3)))
            .collect();
        // Points only: the line pattern is invisible, so colour (backend and type) and marker (backend) tell
        // the series apart.
        let hue = Hue::Slot(slot);
        series.push(Series {
            scatter: true,
            ..Series::measured(
                format!("{backend} {dtype}"),
                Look::measured(hue, Marker::of_backend(backend), Dash::of_precision(dtype)),
                points,
            )
        });
    }
    let k = workloads.len() as f64;
    let level = |y: f64| vec![(0.5, y), (k + 0.5, y)];
    if let Some((p32, p64)) = peak {
        series.push(Series {
            name: format!("FMA peak ({isa}): f32 {p32:.0}, f64 {p64:.0} GFLOP/s"),
            look: Look::bound(Hue::Reference),
            points: level(100.0),
            ..Default::default()
        });
    }
    let (s_name, d_name) = match peak {
        Some(_) => (
            format!("OpenBLAS sgemm n = 1024: {sgemm:.0} GFLOP/s ({:.0} %)", scale("f32", sgemm)),
            format!("OpenBLAS dgemm n = 1024: {dgemm:.0} GFLOP/s ({:.0} %)", scale("f64", dgemm)),
        ),
        None => (format!("OpenBLAS sgemm ceiling, {sgemm:.0} GFLOP/s"), format!("OpenBLAS dgemm ceiling, {dgemm:.0} GFLOP/s")),
    };
    series.push(Series {
        name: s_name,
        look: Look { hue: Hue::Reference, marker: Marker::None, dash: Dash::Short },
        points: level(scale("f32", sgemm)),
        ..Default::default()
    });
    series.push(Series {
        name: d_name,
        look: Look { hue: Hue::Reference, marker: Marker::None, dash: Dash::Dashed },
        points: level(scale("f64", dgemm)),
        ..Default::default()
    });
    let cpu = c.get("cpu").and_then(Value::as_str).map_or(String::new(), |cpu| format!(" ({cpu})"));
    let (title, y, ceiling_line) = match peak {
        Some(_) => (
            "Forward throughput per backend as % of the machine's FMA peak (2 threads)",
            Axis::log("% of the FMA peak of its type"),
            format!("peak: register-only FMA kernel ({isa}), and OpenBLAS GEMM at n = 1024, on the same machine{cpu} (results/backends/gemm-ceiling.json)"),
        ),
        None => (
            "Forward throughput per backend vs the GEMM ceiling (2 threads)",
            Axis::log("GFLOP/s"),
            "ceiling: OpenBLAS GEMM at n = 1024 on the same machine (results/backends/gemm-ceiling.json)".into(),
        ),
    };
    Ok(Chart {
        name: "throughput".into(),
        title: title.into(),
        subtitle: vec![
            format!(
                "criterion medians of run {} (results/bench-history.jsonl); the workload table of `boltz workloads`",
                last.label.replace('\n', " ")
            ),
            ceiling_line,
        ],
        panels: vec![Panel { x: Axis::linear("workload"), y, series, x_categories: workloads, ..Default::default() }],
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;
