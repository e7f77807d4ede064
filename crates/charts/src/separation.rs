//! The separation chart: Lemma 1's gap bound against the measured separation.

use boltz_lab::rows::SeparationRow;
use boltz_lab::suite::config::SuiteConfig;

use crate::style::{Dash, Hue, Look, Marker};
use crate::{Axis, Chart, Panel, Series};

/// The separation of context ids per (n, |V|, d) configuration: measured against Lemma 1's implied bound
/// (left) and Theorem 2's worst-case δ (right, digits on a log axis).
pub(crate) fn separation_chart(rows: &[SeparationRow], cfg: &SuiteConfig) -> Chart {
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
                y_marks: Vec::new(),
            },
            Panel {
                title: "Theorem 2's δ".into(),
                x: Axis::linear("configuration n·|V|·d"),
                y: Axis::log("decimal digits, −log10 δ"),
                series: right,
                x_categories: categories,
                dodge: false,
                y_marks: Vec::new(),
            },
        ],
        ..Default::default()
    }
}
