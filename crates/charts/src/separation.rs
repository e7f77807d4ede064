//! The separation chart: Lemma 1's gap bound against the measured separation.

use boltz_lab::rows::SeparationRow;
use boltz_lab::suite::config::SuiteConfig;

use crate::style::{Dash, Hue, Look, Marker};
use crate::{Axis, Chart, Panel, Series};

/// A row's log10 of one separation quantity.
type Log10Of = fn(&SeparationRow) -> f64;

/// The separation of context ids per (n, |V|, d) configuration, in one quantity on one axis: decimal
/// digits below 1 (−log10 of the value), for the measured smallest gap between ids, the gap Lemma 1
/// implies for the same λ (the measurement must need no more digits than the bound), and Theorem 2's
/// worst-case δ for the same n, |V|, d. Fewer digits = better separated.
pub(crate) fn separation_chart(rows: &[SeparationRow], cfg: &SuiteConfig) -> Chart {
    let categories: Vec<String> = rows.iter().map(|r| format!("n = {}\n|V| = {}\nd = {}", r.n, r.vocab, r.d)).collect();
    // One quantity for all three: digits below 1, −log10 of the gap or δ.
    let quantities: [(&str, Look, Log10Of); 3] = [
        ("measured smallest gap between ids (arbitrary precision)", Look::measured(Hue::Measured, Marker::Circle, Dash::Solid), |r| {
            r.measured_log10
        }),
        (
            "Lemma 1's implied lower bound on the gap, same λ (the measured gap needs fewer digits)",
            Look::measured(Hue::Reference, Marker::Square, Dash::Dotted),
            |r| r.lemma1_implied_log10,
        ),
        ("Theorem 2's worst-case δ for the same n, |V|, d", Look::measured(Hue::Theory, Marker::Triangle, Dash::Solid), |r| {
            r.theory_delta_log10
        }),
    ];
    let series: Vec<Series> = quantities
        .iter()
        .map(|&(name, look, log10)| Series {
            scatter: true,
            ..Series::measured(name, look, rows.iter().enumerate().map(|(i, r)| ((i + 1) as f64, -log10(r))).collect())
        })
        .collect();
    // The subtitle's ranges, read off the points drawn.
    let digits = |s: &Series| {
        let (lo, hi) = s.points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
        format!("{}–{}", crate::common::round_digits(lo), crate::common::round_digits(hi))
    };
    Chart {
        name: "separation".into(),
        title: "Context-id separation of the rank-1 attention layer (Theorem 2, Lemma 1)".into(),
        subtitle: vec![
            format!(
                "Measured policy, up to {} sequences per configuration, seed {}; each configuration is its own dataset (points not joined)",
                cfg.separation.sequences, cfg.seed
            ),
            format!(
                "digits below 1 (fewer = better separated): measured {}, Lemma 1's bound {}, Theorem 2's δ {}",
                digits(&series[0]),
                digits(&series[1]),
                digits(&series[2])
            ),
        ],
        panels: vec![Panel {
            x: Axis::linear("configuration: sequence length n, vocabulary |V|, dimension d"),
            y: Axis::log("decimal digits, −log10 of the gap or δ"),
            series,
            x_categories: categories,
            ..Default::default()
        }],
        ..Default::default()
    }
}
