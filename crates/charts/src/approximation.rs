//! The approximation charts: the FF∘SA∘FF approximator's L² error against δ.

use boltz_lab::rows::ApproximationRow;
use boltz_lab::suite::config::SuiteConfig;

use crate::common::series_by;
use crate::style::{Dash, Hue, Look, Marker};
use crate::{Axis, Chart, Panel, Series};

/// One chart, two panels: the L² error against the grid width δ and against the parameter count, each
/// with the piecewise-constant floor on the same grid and a reference slope through the finest built
/// point (error ∝ δ, the rate of a Lipschitz target's piecewise-constant approximation; error ∝
/// parameters^(−1/n), since the network's size grows like the δ^(−n) cells of the grid).
pub(crate) fn approximation_charts(rows: &[ApproximationRow], cfg: &SuiteConfig) -> Vec<Chart> {
    let mut err = Vec::new();
    let mut par = Vec::new();
    let mut targets: Vec<&str> = Vec::new();
    for r in rows {
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
    }
    let a = &cfg.approximation;
    let n = a.length.max(1) as f64;
    for (i, t) in targets.iter().enumerate() {
        let f = |r: &ApproximationRow| r.target == *t;
        // The floor first, so that where the built error equals it the built series is drawn on top.
        err.push(Series {
            name: format!("{t}: best piecewise-constant error on the same grid"),
            look: Look::formula(Hue::Slot(i)),
            points: series_by(rows, f, |r| r.delta, |r| Some(r.l2_floor)),
            ..Default::default()
        });
        let built = Look::measured(Hue::Slot(i), Marker::Circle, Dash::Solid);
        err.push(Series::measured(format!("{t}: FF∘SA∘FF (built)"), built, series_by(rows, f, |r| r.delta, |r| Some(r.l2_error))));
        par.push(Series::measured(
            format!("{t}: FF∘SA∘FF (built)"),
            built,
            series_by(rows, f, |r| r.params_dense as f64, |r| Some(r.l2_error)),
        ));
    }
    // One legend entry for both panels' guides.
    let guide = format!("reference slope: error ∝ δ, that is ∝ parameters^(−1/n) with n = {}", a.length);
    if let Some(g) = slope_guide(&err, 1.0, &guide) {
        err.push(g);
    }
    if let Some(g) = slope_guide(&par, -1.0 / n, &guide) {
        par.push(g);
    }
    let ticks = delta_ticks(rows);
    vec![Chart {
        name: "approximation_vs_delta".into(),
        title: "Universal approximation (Proposition 1): L² error against δ and against parameters".into(),
        subtitle: vec![format!(
            "{} target{}, n = {}, d = 1, δ from {} to {}; {} random inputs for the L² error, seed {}",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            a.length,
            ticks.last().map_or("?", |t| t.1.as_str()),
            ticks.first().map_or("?", |t| t.1.as_str()),
            a.samples,
            cfg.seed
        )],
        panels: vec![
            Panel {
                title: "against the grid width".into(),
                x: Axis { ticks: ticks.clone(), ..Axis::log("δ (grid cell width)") },
                y: Axis::log("L² error"),
                series: err,
                ..Default::default()
            },
            Panel {
                title: "against the network's size".into(),
                x: Axis::log("parameters (dense)"),
                y: Axis::log("L² error"),
                series: par,
                ..Default::default()
            },
        ],
        ..Default::default()
    }]
}

/// A reference line `y = c·x^slope` over the measured series' x range, through the point of the first
/// measured series with the smallest error (the finest grid).
fn slope_guide(series: &[Series], slope: f64, name: &str) -> Option<Series> {
    let first = series.iter().find(|s| s.is_measured())?;
    let &(x0, y0) = first.points.iter().filter(|p| p.0 > 0.0 && p.1 > 0.0).min_by(|a, b| a.1.total_cmp(&b.1))?;
    let xs = series.iter().filter(|s| s.is_measured()).flat_map(|s| s.points.iter().map(|p| p.0)).filter(|x| *x > 0.0);
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let at = |x: f64| (x, y0 * (x / x0).powf(slope));
    Some(Series { name: name.into(), look: Look::bound(Hue::Reference), points: vec![at(lo), at(hi)], ..Default::default() })
}

/// A tick at every δ of the rows, labelled as a fraction (1/2, 1/4, …) where δ is one over an integer.
fn delta_ticks(rows: &[ApproximationRow]) -> Vec<(f64, String)> {
    let mut deltas: Vec<f64> = rows.iter().map(|r| r.delta).filter(|d| d.is_finite() && *d > 0.0).collect();
    deltas.sort_by(f64::total_cmp);
    deltas.dedup();
    deltas
        .into_iter()
        .map(|d| {
            let k = (1.0 / d).round();
            (d, if (1.0 / d - k).abs() < 1e-9 * k && k >= 1.0 { format!("1/{k}") } else { format!("{d}") })
        })
        .collect()
}
