//! What the experiment charts share: series from typed rows, the policies' labels and colours.

use boltz_construct::deep::bit_extraction::Task;
use boltz_construct::deep::yun::YunDelta;
use boltz_construct::{Construction, Policy};
use boltz_lab::rows::{self, BuiltColumns, ConstructionRow, OneLayerFields};

use crate::style::Hue;

/// The points `(x(r), y(r))` of the rows `keep` selects that have a y value, sorted by x.
pub(crate) fn series_by<R>(rows: &[R], keep: impl Fn(&R) -> bool, x: impl Fn(&R) -> f64, y: impl Fn(&R) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = rows.iter().filter(|r| keep(r)).filter_map(|r| Some((x(r), y(r)?))).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// Whether a row is of construction `c`.
pub(crate) fn is_policy(c: Construction) -> impl Fn(&ConstructionRow) -> bool {
    move |r| r.policy == c
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

/// The constructions in chart order (the registry's, `boltz_construct::construction::REGISTRY`), each with
/// what a reader should see in the legend.
pub(crate) fn constructions() -> impl Iterator<Item = (Construction, &'static str)> {
    Construction::ALL.iter().map(|&c| (c, c.label()))
}

/// The one-layer softmax constructions, in the order whose first present one draws the one-layer curves.
pub(crate) const SOFTMAX: [Construction; 4] = [
    Construction::OneLayer(Policy::Measured),
    Construction::OneLayer(Policy::FewestBits),
    Construction::OneLayer(Policy::Tuned),
    Construction::OneLayer(Policy::Theory),
];

/// Mean pooling (λ = 0).
pub(crate) const MEAN_POOL: Construction = Construction::OneLayer(Policy::MeanPool);
/// Yun et al. on the dyadic grid.
pub(crate) const YUN: Construction = Construction::Yun(YunDelta::Dyadic);
/// The bit-extraction construction (sequence-to-sequence).
pub(crate) const BIT_EXTRACTION: Construction = Construction::BitExtraction(Task::SequenceToSequence);

/// A construction's colour.
pub(crate) fn policy_hue(c: Construction) -> Hue {
    Hue::of_construction(c)
}

/// `x` rounded to an integer, thousands grouped by a space (1 234 567).
pub(crate) fn round_digits(x: f64) -> String {
    let digits = format!("{}", x.round().abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if x.round() < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}
