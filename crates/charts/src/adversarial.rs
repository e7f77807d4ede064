//! The adversarial chart: fewest bits per data family where mean pooling collides.

use boltz_lab::rows::ConstructionRow;
use boltz_lab::suite::config::SuiteConfig;

use crate::common::{constructions, fewest_bits, is_policy, policy_hue};
use crate::style::{Dash, Look, Marker};
use crate::{Axis, Chart, Panel, Series};
use boltz_construct::Construction;

/// Fewest bits per data family at the largest N, constructions side by side.
pub(crate) fn adversarial_chart(rows: &[ConstructionRow], cfg: &SuiteConfig) -> Chart {
    let mut families: Vec<&str> = Vec::new();
    for f in rows.iter().filter_map(|r| r.family.as_deref()) {
        if !families.contains(&f) {
            families.push(f);
        }
    }
    let largest = rows.iter().map(|r| r.sequences).max().unwrap_or(0);
    let present: Vec<Construction> = Construction::ALL.iter().copied().filter(|&p| rows.iter().any(is_policy(p))).collect();
    let mut series = Vec::new();
    for (p, label) in constructions() {
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
            y_marks: vec![24.0, 53.0],
            ..Default::default()
        }],
        failed_note: Some("does not memorize (mean pooling: two contexts collide; no bits suffice)".into()),
    }
}
