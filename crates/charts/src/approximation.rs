//! The approximation charts: the FF∘SA∘FF approximator's L² error against δ.

use boltz_lab::rows::ApproximationRow;
use boltz_lab::suite::config::SuiteConfig;

use crate::common::series_by;
use crate::style::{Dash, Hue, Look, Marker};
use crate::{Axis, Chart, Panel, Series};

pub(crate) fn approximation_charts(rows: &[ApproximationRow], cfg: &SuiteConfig) -> Vec<Chart> {
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
