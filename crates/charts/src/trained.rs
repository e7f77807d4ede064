//! The trained-capacity chart: what gradient training memorizes per recipe, against the construction.

use boltz_lab::rows::{ConstructionRow, TrainedRow};
use boltz_lab::suite::config::SuiteConfig;

use crate::common::{big_n, built, fewest_bits, is_policy, policy_hue, series_by, BIT_EXTRACTION, SOFTMAX, YUN};
use crate::style::{Dash, Hue, Look, Marker};
use crate::{Axis, Chart, Panel, Series};
use boltz_construct::Construction;

/// The legend text of a trained model: its shape and recipe, and the family when not generic data.
pub(crate) fn trained_label(r: &TrainedRow) -> String {
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
pub(crate) fn trained_chart(rows: &[TrainedRow], cfg: &SuiteConfig, built_rows: &[ConstructionRow]) -> Chart {
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
            .filter_map(|(m, f)| {
                let mine: Vec<&TrainedRow> = rows.iter().filter(|r| r.model == *m && r.family == *f).collect();
                let mut pts: Vec<(f64, f64)> = mine.iter().filter_map(|r| Some((x(r)?, y(r)?))).collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let first = mine.first()?;
                // The colour is the recipe's (the same in every chart); the marker, the data family's.
                let marker = match first.family.as_str() {
                    "random" => Marker::Circle,
                    "grid" => Marker::Square,
                    "pte" => Marker::Diamond,
                    _ => Marker::Triangle,
                };
                Some(Series {
                    scatter: true,
                    ..Series::measured(
                        trained_label(first),
                        Look::measured(Hue::of_recipe(first.blocks, first.rank, first.warm_start), marker, Dash::Solid),
                        pts,
                    )
                })
            })
            .collect()
    };
    let memorized = |r: &TrainedRow| (r.largest_memorized > 0).then_some(r.largest_memorized as f64);
    // The constructions are on the same axes only for the same n, d and |V| on generic data.
    let c = &cfg.capacity;
    let comparable = rows.iter().any(|r| r.family == "random" && r.n == c.length && r.d == c.dim && r.vocab == c.vocab);
    // Within a decade of what training reached: the constructions' points up to 10× the largest N trained,
    // so that the trained points do not crowd one corner of axes running to the sweep's largest N.
    let reach = 10 * rows.iter().map(|r| r.largest_memorized).max().unwrap_or(0).max(1);
    let clipped = built_rows.iter().any(|r| r.sequences > reach);
    let near: Vec<ConstructionRow> = built_rows.iter().filter(|r| r.sequences <= reach).cloned().collect();
    let built_rows: &[ConstructionRow] = if comparable { &near } else { &[] };
    let softmax_policy = SOFTMAX.into_iter().find(|&p| built_rows.iter().any(is_policy(p)));
    let constructions: Vec<(Construction, String)> = softmax_policy
        .into_iter()
        .map(|p| (p, "one-layer memorizer (built)".to_string()))
        .chain([YUN, BIT_EXTRACTION].into_iter().map(|p| (p, format!("{} (built)", p.label()))))
        .filter(|&(p, _)| built_rows.iter().any(is_policy(p)))
        .collect();
    let built_series = |y: &dyn Fn(&ConstructionRow) -> Option<f64>, x: &dyn Fn(&ConstructionRow) -> f64| -> Vec<Series> {
        constructions
            .iter()
            .map(|(p, label)| {
                Series::measured(
                    label.clone(),
                    Look::measured(policy_hue(*p), Marker::Circle, Dash::Solid),
                    series_by(built_rows, is_policy(*p), x, y),
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
        format!(
            "a trained point: the largest N memorized at 100 % token accuracy (reference backend); parameters counted dense; equal N at one width dodged{}",
            if comparable && clipped { format!("; constructions up to N = {reach} (10× the largest N trained)") } else { String::new() }
        ),
    ];
    // At most one more line: what is not drawn, and why.
    let mut missing = Vec::new();
    if !comparable {
        missing.push("the constructions (the capacity sweep has other n, d or |V|, or did not run)".to_string());
    }
    if !none.is_empty() {
        missing.push(format!("{} (memorized not even N = 1)", none.join("; ")));
    }
    if !missing.is_empty() {
        subtitle.push(format!("not drawn: {}", missing.join("; ")));
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
