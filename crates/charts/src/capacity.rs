//! The capacity charts: precision, depth, parameters, latency and accuracy of each construction as N grows.

use boltz_construct::Construction;
use boltz_lab::rows::ConstructionRow;
use boltz_lab::suite::config::SuiteConfig;

use crate::common::{
    big_n, built, constructions, fewest_bits, is_policy, one_layer, policy_hue, run_of, series_by, BIT_EXTRACTION, MEAN_POOL, SOFTMAX, YUN,
};
use crate::style::{Dash, Hue, Look, Marker};
use crate::{Axis, Chart, Panel, Series};

/// The capacity sweep's fixed parameters.
pub(crate) fn capacity_subtitle(cfg: &SuiteConfig) -> String {
    let c = &cfg.capacity;
    format!(
        "n = {}, d = {}, |V| = {} generic tokens, 2 label classes, seed {}; one generated dataset per N",
        c.length, c.dim, c.vocab, cfg.seed
    )
}

/// `reference` scaled by the factor that makes it meet `anchor` at the first x both have (a reference
/// curve with arbitrary constants: only its shape means something).
pub(crate) fn scaled_to_meet(reference: &[(f64, f64)], anchor: &[(f64, f64)]) -> Option<(Vec<(f64, f64)>, f64)> {
    let (x0, a0) = anchor.iter().copied().find(|(x, _)| reference.iter().any(|(rx, _)| rx == x))?;
    let r0 = reference.iter().find(|(rx, _)| *rx == x0)?.1;
    (r0 > 0.0 && a0 > 0.0).then(|| (reference.iter().map(|&(x, y)| (x, y * a0 / r0)).collect(), x0))
}

/// Depth, parameters, precision, accuracy, latency and attention rank against N.
pub(crate) fn capacity_charts(rows: &[ConstructionRow], cfg: &SuiteConfig, threads: usize, out: &mut Vec<Chart>) {
    let fixed = capacity_subtitle(cfg);
    // The one-layer depth and parameter curves come from a softmax policy's rows (every one-layer
    // policy builds the same two layers; mean pooling is not the rank-1 softmax construction).
    let softmax_policy = SOFTMAX.into_iter().find(|&p| rows.iter().any(is_policy(p)));
    let first_policy = softmax_policy.unwrap_or(MEAN_POOL);
    let runs = configured_runs(rows);
    // One N: every "against N" chart would be one point per series (a table instead, `capacity_tables`).
    if distinct_ns(rows) > 1 {
        out.push(depth_chart(rows, first_policy, &fixed));
        out.push(params_chart(rows, first_policy, &fixed));
        out.push(precision_chart(rows, cfg, &fixed));
        out.push(accuracy_chart(rows, &runs, &fixed));
        out.push(latency_chart(rows, &runs, threads, &fixed));
    }
    if !ranks_are_constant(&ranks(rows)) {
        out.extend(rank_chart(rows, cfg, fixed));
    }
}

/// How many different N the rows hold.
fn distinct_ns(rows: &[ConstructionRow]) -> usize {
    let mut ns: Vec<usize> = rows.iter().map(|r| r.sequences).collect();
    ns.sort_unstable();
    ns.dedup();
    ns.len()
}

/// One recorded rank: (N, key-query rank, value-output rank).
type RankAt = (usize, usize, usize);

/// The recorded attention ranks, per construction in chart order: (construction, label, its ranks over N).
fn ranks(rows: &[ConstructionRow]) -> Vec<(Construction, &'static str, Vec<RankAt>)> {
    constructions()
        .filter_map(|(p, label)| {
            let ranked: Vec<RankAt> = rows
                .iter()
                .filter(|r| r.policy == p)
                .filter_map(|r| {
                    let a = r.built.as_ref()?.attention_rank?;
                    Some((r.sequences, a.rank_key_query_max, a.rank_value_output_max))
                })
                .collect();
            (!ranked.is_empty()).then_some((p, label, ranked))
        })
        .collect()
}

/// Whether every construction's ranks are the same at every N (a chart would be constant lines).
fn ranks_are_constant(ranked: &[(Construction, &'static str, Vec<RankAt>)]) -> bool {
    ranked.iter().all(|(_, _, r)| r.iter().all(|&(_, kq, vo)| (kq, vo) == (r[0].1, r[0].2)))
}

/// The tables that stand in for charts: the attention ranks when they are constant over N, and the
/// capacity sweep's quantities when it has one N.
pub(crate) fn capacity_tables(rows: &[ConstructionRow], cfg: &SuiteConfig, out: &mut Vec<crate::Table>) {
    let fixed = capacity_subtitle(cfg);
    let ranked = ranks(rows);
    if !ranked.is_empty() && ranks_are_constant(&ranked) {
        let d = cfg.capacity.dim;
        out.push(crate::Table {
            name: "attention_rank".into(),
            title: "Rank of the attention products (largest over the model's heads)".into(),
            note: format!(
                "{fixed}. Numerical rank of the d × d products by SVD (LAPACK, f64; σ > max(rows, cols)·ε·σ₁); full rank is d = {d}. \
                 Each construction's ranks are the same at every N listed, so they are a table, not a chart."
            ),
            header: vec!["construction".into(), "rank W_Kᵀ W_Q".into(), "rank W_Vᵀ W_Oᵀ".into(), "at N".into()],
            rows: ranked
                .iter()
                .map(|(_, label, r)| {
                    let ns: Vec<String> = r.iter().map(|x| x.0.to_string()).collect();
                    vec![label.to_string(), r[0].1.to_string(), r[0].2.to_string(), ns.join(", ")]
                })
                .collect(),
            replaces: vec!["attention_rank".into()],
        });
    }
    if distinct_ns(rows) == 1 {
        let big_n = rows.first().map_or(0, |r| r.sequences);
        let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
        let mut precisions = configured_runs(rows);
        precisions.sort();
        let mut header: Vec<String> =
            ["construction", "layers", "parameters (dense)", "bits to build", "fewest bits", "exact forward (ms)"]
                .iter()
                .map(|h| h.to_string())
                .collect();
        header.extend(precisions.iter().map(|(backend, precision)| format!("accuracy, {backend} {precision}")));
        out.push(crate::Table {
            name: "capacity_at_one_n".into(),
            title: format!("The constructions at N = {big_n}"),
            note: format!(
                "{fixed}. One N only, so the sweep's charts against N would be one point per series; \
                 “—”: not recorded, “no run”: the model does not fit the format (a weight or activation overflows)."
            ),
            header,
            rows: constructions()
                .filter_map(|(p, label)| {
                    let r = rows.iter().find(|r| r.policy == p)?;
                    let b = r.built.as_ref();
                    let mut row = vec![
                        label.to_string(),
                        opt(b.map(|b| b.layers.to_string())),
                        opt(b.map(|b| crate::common::round_digits(b.params_dense as f64))),
                        opt(b.map(|b| b.build_bits.to_string())),
                        opt(fewest_bits(r).map(|f| f.to_string())),
                        opt(b.map(|b| format!("{:.1}", b.latency_bigfloat_ms))),
                    ];
                    for (backend, precision) in &precisions {
                        row.push(match run_of(r, backend, precision) {
                            Some(run) => run.accuracy.map_or_else(|| "no run".to_string(), |a| format!("{a:.4}")),
                            None => "—".into(),
                        });
                    }
                    Some(row)
                })
                .collect(),
            replaces: ["depth_vs_n", "params_vs_n", "precision_vs_n", "accuracy_vs_n", "latency_vs_n"].map(String::from).to_vec(),
        });
    }
}

/// The one-layer model's legend name for one of its built quantities.
fn one_layer_name(first_policy: Construction, what: &str) -> String {
    format!("{} — built, {what}", first_policy.label())
}

/// Layers against N: the one-layer model, Yun et al. built and by formula, bit extraction, Kim's shape.
fn depth_chart(rows: &[ConstructionRow], first_policy: Construction, fixed: &str) -> Chart {
    let fp = is_policy(first_policy);
    let yun_built = series_by(rows, is_policy(YUN), big_n, built(|b| Some(b.layers as f64)));
    let kim_depth = series_by(rows, &fp, big_n, one_layer(|o| o.kim_depth_reference));
    let mut depth = vec![
        Series::measured(
            one_layer_name(first_policy, "attention + FFN"),
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
    let bx = is_policy(BIT_EXTRACTION);
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
            look: Look::formula(Hue::Reference),
            points: pts,
            ..Default::default()
        });
    }
    Chart {
        name: "depth_vs_n".into(),
        title: "Depth to memorize N sequences".into(),
        subtitle: vec![fixed.to_string()],
        panels: vec![Panel { x: Axis::log("N (sequences)"), y: Axis::log("layers"), series: depth, ..Default::default() }],
        ..Default::default()
    }
}

/// Parameters against N: stored and dense counts, the paper's and Yun's formulas, bit extraction, and the
/// shapes of Kim's count and the Ω(√(nN)) lower bound.
fn params_chart(rows: &[ConstructionRow], first_policy: Construction, fixed: &str) -> Chart {
    let fp = is_policy(first_policy);
    let bx = is_policy(BIT_EXTRACTION);
    let one_layer_params = series_by(rows, &fp, big_n, built(|b| Some(b.params_factored as f64)));
    let mut params = vec![
        Series::measured(
            one_layer_name(first_policy, "rank-1 weights as factors"),
            Look::measured(policy_hue(first_policy), Marker::Circle, Dash::Solid),
            one_layer_params.clone(),
        ),
        Series::measured(
            "Yun et al., data-adaptive (built, dense)",
            Look::measured(Hue::Yun, Marker::Circle, Dash::Solid),
            series_by(rows, is_policy(YUN), big_n, built(|b| Some(b.params_dense as f64))),
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
            look: Look::formula(Hue::Reference),
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
    Chart {
        name: "params_vs_n".into(),
        title: "Parameters to memorize N sequences".into(),
        subtitle: vec![fixed.to_string()],
        panels: vec![Panel { x: Axis::log("N (sequences)"), y: Axis::log("parameters"), series: params, ..Default::default() }],
        ..Default::default()
    }
}

/// Every construction's fewest bits, where it was bisected, with the points where the search was not
/// monotone marked; the formats as dotted limits over the same N range where some construction comes
/// near them (within 4× f64's 53 bits; else they would stretch the axis over empty decades, and the
/// subtitle says so). The subtitle is generated from what the chart holds.
fn precision_chart(rows: &[ConstructionRow], cfg: &SuiteConfig, fixed: &str) -> Chart {
    let mut precision = Vec::new();
    let mut present = Vec::new();
    for (p, label) in constructions() {
        let pts = series_by(rows, is_policy(p), big_n, fewest_bits);
        if !pts.is_empty() {
            present.push(p);
            precision.push(Series::measured(label, Look::measured(policy_hue(p), Marker::Circle, Dash::Solid), pts));
        }
    }
    // Non-monotone searches: some precision below the answer decodes too (the answer is the smallest p
    // above which every probe decodes).
    let odd: Vec<&ConstructionRow> = rows
        .iter()
        .filter(|r| r.built.as_ref().and_then(|b| b.bits.as_ref()).is_some_and(|b| b.fewest_bits.is_some() && !b.fewest_bits_monotone))
        .collect();
    let bisected: Vec<f64> = precision.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let lowest = precision.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(f64::INFINITY, f64::min);
    if !odd.is_empty() {
        let example = odd[0].built.as_ref().and_then(|b| b.bits.as_ref()).map(|b| {
            let isolated: Vec<String> = b
                .fewest_bits_holds_at
                .iter()
                .filter(|h| h[1] < b.fewest_bits.unwrap_or(0))
                .map(|h| if h[0] == h[1] { h[0].to_string() } else { format!("{}–{}", h[0], h[1]) })
                .collect();
            format!("{} bits also decode at N = {}", isolated.join(", "), odd[0].sequences)
        });
        precision.push(Series {
            scatter: true,
            ..Series::measured(
                format!("search not monotone here: {}", example.unwrap_or_default()),
                Look::measured(Hue::Reference, Marker::Diamond, Dash::Solid),
                odd.iter().filter_map(|r| Some((big_n(r), fewest_bits(r)?))).collect(),
            )
        });
    }
    let (xmin, xmax) = bisected.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let formats_in_sight = lowest <= 4.0 * 53.0;
    if xmin.is_finite() && formats_in_sight {
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
    let limits: String = cfg
        .capacity
        .bisect_max_sequences_by_policy
        .iter()
        .filter_map(|(p, n)| present.iter().find(|c| c.name() == p.as_str()).map(|c| format!(", {} N ≤ {n}", c.label())))
        .collect();
    let mut line = format!(
        "searched in arbitrary precision (every operation rounded to p bits) for N ≤ {}{limits}",
        cfg.capacity.bisect_max_sequences
    );
    let one_layer = present.iter().any(|p| SOFTMAX.contains(p) || *p == MEAN_POOL);
    let deep = present.iter().any(|p| *p == YUN || *p == BIT_EXTRACTION);
    if one_layer && deep {
        line.push_str("; the one-layer model trades depth for bits");
    }
    if !formats_in_sight && lowest.is_finite() {
        line.push_str(&format!("; every value is above {} bits, far above f64 (53) and f32 (24), which are not drawn", lowest));
    }
    let mut subtitle = vec![fixed.to_string(), line];
    if present.len() > 1 {
        subtitle.push("points of different constructions at one N are dodged sideways so that equal values stay visible".into());
    }
    Chart {
        name: "precision_vs_n".into(),
        title: "Fewest mantissa bits for exact memorization".into(),
        subtitle,
        panels: vec![Panel {
            x: Axis::log("N (sequences)"),
            y: Axis::log("mantissa bits"),
            series: precision,
            dodge: present.len() > 1,
            y_marks: vec![24.0, 53.0],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The configured runs (backend, precision), in configuration order.
fn configured_runs(rows: &[ConstructionRow]) -> Vec<(String, String)> {
    rows.iter().filter_map(|r| r.built.as_ref()).fold(Vec::new(), |mut acc, b| {
        for r in &b.runs {
            let key = (r.backend.clone(), r.precision.clone());
            if !acc.contains(&key) {
                acc.push(key);
            }
        }
        acc
    })
}

/// Accuracy: one panel per hardware type, from one backend for both where one ran both types (another
/// backend in the same type decodes the same tokens up to rounding order), else each type's first
/// configured run; where the panels' backends differ, the legend names each series' backend.
fn accuracy_chart(rows: &[ConstructionRow], configured: &[(String, String)], fixed: &str) -> Chart {
    let ran = |b: &str, t: &str| configured.iter().any(|(cb, ct)| cb == b && ct == t);
    let both = configured.iter().map(|(b, _)| b.as_str()).find(|b| ran(b, "f64") && ran(b, "f32"));
    let backend_of = |t: &str| both.or_else(|| configured.iter().find(|(_, p)| p == t).map(|(b, _)| b.as_str()));
    let mixed = both.is_none() && backend_of("f64").is_some() && backend_of("f32").is_some();
    let mut panels = Vec::new();
    for t in ["f64", "f32"] {
        let Some(backend) = backend_of(t) else { continue };
        let mut series = Vec::new();
        for (p, label) in constructions() {
            let these: Vec<&ConstructionRow> = rows.iter().filter(|r| r.policy == p && r.built.is_some()).collect();
            if these.is_empty() {
                continue;
            }
            let name = if mixed { format!("{label}, {backend} backend") } else { label.to_string() };
            let mut s = Series::measured(name, Look::measured(policy_hue(p), Marker::of_backend(backend), Dash::Solid), Vec::new());
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
            y: Axis { label: "fraction of tokens decoded".into(), log: false, range: Some((-0.02, 1.05)), ticks: Vec::new() },
            series,
            dodge: true,
            ..Default::default()
        });
    }
    Chart {
        name: "accuracy_vs_n".into(),
        title: "Memorization accuracy when the exact model is rounded to f64 and f32".into(),
        subtitle: vec![
            fixed.to_string(),
            "weights, inputs and arithmetic in the format; a token decodes when every coordinate is within ½ of its target; points dodged sideways".into(),
        ],
        panels,
        failed_note: Some("does not fit: a weight or an activation overflows the format (no accuracy; not 0)".into()),
    }
}

/// Latency: every configured run except the scalar reference (an oracle, not a contender), with its spread;
/// the arbitrary-precision verification at each model's own build bits.
fn latency_chart(rows: &[ConstructionRow], configured: &[(String, String)], threads: usize, fixed: &str) -> Chart {
    let mut latency = Vec::new();
    for (p, label) in constructions() {
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
    Chart {
        name: "latency_vs_n".into(),
        title: "Forward latency over the whole training set".into(),
        subtitle: vec![
            fixed.to_string(),
            match repeats {
                Some(k) => format!(
                    "one point = one batched forward over all N sequences (N·n tokens), median of {k}; bars: min–max; {threads} threads"
                ),
                None => "one point = one batched forward over all N sequences (N·n tokens), a single run (files before repeats)".into(),
            },
        ],
        panels: vec![Panel { x: Axis::log("N (sequences)"), y: Axis::log("ms per forward"), series: latency, ..Default::default() }],
        failed_note: Some("no run: the model does not fit the format".into()),
    }
}

/// Attention rank, where recorded (builds with the blas feature): one category per construction, the rank at
/// the largest N with whiskers over every N (ranks do not depend on the x axis, so a line per construction
/// would hide the others).
fn rank_chart(rows: &[ConstructionRow], cfg: &SuiteConfig, fixed: String) -> Option<Chart> {
    let mut categories = Vec::new();
    let mut rank = Vec::new();
    for (p, label, ranked) in ranks(rows) {
        let Some(&at_largest) = ranked.iter().max_by_key(|r| r.0) else { continue };
        categories.push(p.tick().to_string());
        let x = categories.len() as f64;
        for (name, marker, offset, value) in [
            ("W_Kᵀ W_Q", Marker::Circle, -0.12, (|r: &RankAt| r.1) as fn(&RankAt) -> usize),
            ("W_Vᵀ W_Oᵀ", Marker::Diamond, 0.12, |r: &RankAt| r.2),
        ] {
            let values: Vec<f64> = ranked.iter().map(|r| value(r) as f64).collect();
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
    if rank.is_empty() {
        return None;
    }
    let d = cfg.capacity.dim as f64;
    let k = categories.len() as f64;
    rank.push(Series {
        name: format!("full rank d = {}", cfg.capacity.dim),
        look: Look::bound(Hue::Reference),
        points: vec![(0.5, d), (k + 0.5, d)],
        ..Default::default()
    });
    let largest = rows.iter().map(|r| r.sequences).max().unwrap_or(0);
    Some(Chart {
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
                y: Axis { label: "numerical rank".into(), log: false, range: Some((-0.3, d + 0.6)), ticks: Vec::new() },
                series: rank,
                x_categories: categories,
                ..Default::default()
            }],
            ..Default::default()
        })
}
