//! What the experiment charts share: series from typed rows, the policies' labels and colours.

use boltz_lab::rows::{self, BuiltColumns, ConstructionRow, OneLayerFields};

use crate::style::Hue;

/// The points `(x(r), y(r))` of the rows `keep` selects that have a y value, sorted by x.
pub(crate) fn series_by<R>(rows: &[R], keep: impl Fn(&R) -> bool, x: impl Fn(&R) -> f64, y: impl Fn(&R) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = rows.iter().filter(|r| keep(r)).filter_map(|r| Some((x(r), y(r)?))).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

pub(crate) fn is_policy(p: &str) -> impl Fn(&ConstructionRow) -> bool + '_ {
    move |r| r.policy == p
}

/// N of a construction row, the x axis of the capacity charts.
pub(crate) fn big_n(r: &ConstructionRow) -> f64 {
    r.sequences as f64
}

/// A value of a built one-layer row.
pub(crate) fn one_layer(f: impl Fn(&OneLayerFields) -> f64) -> impl Fn(&ConstructionRow) -> Option<f64> {
    move |r| r.built.as_ref()?.one_layer.as_ref().map(&f)
}

/// A value of a built row of any construction.
pub(crate) fn built(f: impl Fn(&BuiltColumns) -> Option<f64>) -> impl Fn(&ConstructionRow) -> Option<f64> {
    move |r| f(r.built.as_ref()?)
}

/// The run of `backend` in `precision` of a built row, where it has one.
pub(crate) fn run_of<'a>(r: &'a ConstructionRow, backend: &str, precision: &str) -> Option<&'a rows::BackendRunRow> {
    r.built.as_ref().and_then(|b| rows::BackendRunRow::find(&b.runs, backend, precision))
}

pub(crate) fn fewest_bits(r: &ConstructionRow) -> Option<f64> {
    r.built.as_ref()?.bits.as_ref()?.fewest_bits.map(|b| b as f64)
}

/// The constructions in chart order, with what a reader should see in the legend.
pub(crate) const POLICIES: [(&str, &str); 8] = [
    ("measured", "one layer, rank-1 softmax, λ of Lemma 1 (Measured)"),
    ("fewest-bits", "one layer, rank-1 softmax, λ chosen for fewest bits"),
    ("tuned", "one layer, rank-1 softmax, smallest separating λ"),
    ("theory", "one layer, rank-1 softmax, Theorem 2 constants"),
    ("mean-pool", "one layer, mean pooling (λ = 0, not softmax)"),
    ("yun", "Yun et al., deep hardmax (dyadic δ)"),
    ("yun-minimal", "Yun et al., deep hardmax (minimal δ)"),
    ("bit-extraction", "bit extraction: 1 averaging attention + deep narrow FFN, Õ(√(nN))"),
];

pub(crate) fn policy_label(p: &str) -> &str {
    POLICIES.iter().find(|(k, _)| *k == p).map_or(p, |(_, label)| label)
}

pub(crate) fn policy_hue(p: &str) -> Hue {
    Hue::of_construction(p).unwrap_or(Hue::Slot(0))
}
