//! How a series looks, by what it *is*: the colour says which construction (or which member of a chart's
//! own open set: a target, a workload, a configuration), the marker which backend measured it, the line
//! which precision or whether it is a formula or a bound. The same construction has the same colour in
//! every chart, so a reader learns the legend once.
//!
//! Colours are the Okabe–Ito palette (distinguishable with every common colour-vision deficiency) for the
//! named constructions, then Paul Tol's "muted" palette for open sets.

use boltz_construct::{Construction, Policy};
use plotters::style::RGBColor;

/// The colour of a series: who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hue {
    /// One-layer memorizer, Measured policy (λ of Lemma 1).
    Measured,
    /// One-layer memorizer, fewest-bits policy.
    FewestBits,
    /// One-layer memorizer, Tuned policy.
    Tuned,
    /// One-layer memorizer, Theorem 2's constants.
    Theory,
    /// Mean pooling (λ = 0).
    MeanPool,
    /// Yun et al., dyadic δ.
    Yun,
    /// Yun et al., minimal δ.
    YunMinimal,
    /// The built parameter-optimal (bit-extraction) construction of Kim et al. and Kajitsuka & Sato 2025
    /// (Kim et al.'s reference shapes, which would overlap its non-zero count, are drawn as references).
    Kim,
    /// The i-th extension of the registry ([`Construction::Extension`]), in registry order.
    Extension(usize),
    /// Formats, ceilings, bounds and thresholds that belong to no construction.
    Reference,
    /// The i-th member of a chart's own open set (targets, configurations, workloads, backends).
    Slot(usize),
}

/// Colours of the extensions ([`Hue::Extension`]): Tol "muted" indigo, olive and teal, apart from every
/// built-in construction's.
const EXTENSIONS: [RGBColor; 3] = [RGBColor(51, 34, 136), RGBColor(153, 153, 51), RGBColor(68, 170, 153)];

/// Tol "muted" (without its pale grey), for [`Hue::Slot`].
const SLOTS: [RGBColor; 9] = [
    RGBColor(51, 34, 136),
    RGBColor(136, 204, 238),
    RGBColor(68, 170, 153),
    RGBColor(17, 119, 51),
    RGBColor(153, 153, 51),
    RGBColor(221, 204, 119),
    RGBColor(204, 102, 119),
    RGBColor(136, 34, 85),
    RGBColor(170, 68, 153),
];

impl Hue {
    /// The colour of a construction (Yun's full-grid variants share their grid's colour; both
    /// bit-extraction tasks share Kim et al.'s, whose curve they realise).
    pub fn of_construction(c: Construction) -> Self {
        use boltz_construct::deep::yun::YunDelta;
        match c {
            Construction::OneLayer(Policy::Measured) => Self::Measured,
            Construction::OneLayer(Policy::FewestBits) => Self::FewestBits,
            Construction::OneLayer(Policy::Tuned) => Self::Tuned,
            Construction::OneLayer(Policy::Theory) => Self::Theory,
            Construction::OneLayer(Policy::MeanPool) => Self::MeanPool,
            Construction::Yun(YunDelta::Dyadic) | Construction::YunFull(YunDelta::Dyadic) => Self::Yun,
            Construction::Yun(YunDelta::Minimal) | Construction::YunFull(YunDelta::Minimal) => Self::YunMinimal,
            Construction::BitExtraction(_) => Self::Kim,
            Construction::Extension(_) => Self::Extension(
                Construction::ALL.iter().filter(|e| matches!(e, Construction::Extension(_))).position(|&e| e == c).unwrap_or(0),
            ),
        }
    }

    /// The colour of a backend running in a type (`cpu` `f32`, `blas` `f64`, …), the same in every chart
    /// of every results directory (the bench history and the throughput chart included).
    pub fn of_backend(backend: &str, dtype: &str) -> Self {
        let b = match backend {
            "cpu" => 0,
            "blas" => 1,
            "cuda" => 2,
            "bigfloat" => 3,
            _ => 4,
        };
        Self::Slot(2 * b + usize::from(dtype == "f64"))
    }

    /// The colour of a training recipe, the same in every chart of every results directory: one layer with
    /// rank-1, full-rank or other-rank attention, each with or without a curriculum over N (six colours);
    /// rank-1 stacks of 2 and of 3 or more blocks (two more); every other deep recipe shares the last. The
    /// data family is the marker's business, not the colour's.
    pub fn of_recipe(blocks: usize, rank: Option<usize>, curriculum: bool) -> Self {
        let attention = match rank {
            Some(1) => 0,
            None => 1,
            Some(_) => 2,
        };
        Self::Slot(match (blocks, attention) {
            (0 | 1, a) => a + 3 * usize::from(curriculum),
            (2, 0) => 6,
            (_, 0) => 7,
            _ => 8,
        })
    }

    /// The RGB colour.
    pub fn rgb(self) -> RGBColor {
        match self {
            // Okabe–Ito.
            Self::Measured => RGBColor(0, 114, 178),
            Self::FewestBits => RGBColor(213, 94, 0),
            Self::Tuned => RGBColor(0, 158, 115),
            Self::Theory => RGBColor(204, 121, 167),
            Self::MeanPool => RGBColor(120, 120, 120),
            Self::Yun => RGBColor(230, 159, 0),
            // A brown of the Yun family (not Okabe–Ito's sky blue, which sat beside Measured's blue).
            Self::YunMinimal => RGBColor(153, 79, 0),
            Self::Kim => RGBColor(136, 34, 85),
            Self::Extension(i) => EXTENSIONS[i % EXTENSIONS.len()],
            Self::Reference => RGBColor(0, 0, 0),
            Self::Slot(i) => SLOTS[i % SLOTS.len()],
        }
    }
}

/// The marker of a measured series: which backend (or evaluation) produced the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Marker {
    /// No marker: formulas, bounds and references only.
    None,
    /// Built values, the scalar reference backend.
    Circle,
    /// The CPU engine.
    Square,
    /// OpenBLAS.
    Diamond,
    /// The arbitrary-precision backend.
    Triangle,
    /// CUDA.
    Cross,
}

impl Marker {
    /// The marker of a backend (`reference`, `cpu`, `blas`, `bigfloat`, `cuda`).
    pub fn of_backend(name: &str) -> Self {
        match name {
            "cpu" => Self::Square,
            "blas" => Self::Diamond,
            "bigfloat" => Self::Triangle,
            "cuda" => Self::Cross,
            _ => Self::Circle,
        }
    }
}

/// The line of a series: solid for measured values in f64 (or exact), other patterns for f32, formulas
/// and bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dash {
    /// Measured, f64 or exact arithmetic.
    Solid,
    /// Measured in f32 (short dashes).
    Short,
    /// A formula or reference curve (long dashes).
    Dashed,
    /// A bound, threshold or format limit (dots).
    Dotted,
}

impl Dash {
    /// The line of a measured series in `precision` (`f32` short dashes, everything else solid).
    pub fn of_precision(precision: &str) -> Self {
        if precision == "f32" {
            Self::Short
        } else {
            Self::Solid
        }
    }
}

/// Everything that tells two series apart on the page; no two series of a chart may share one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Look {
    /// Colour.
    pub hue: Hue,
    /// Marker (`None` for formulas and bounds).
    pub marker: Marker,
    /// Line.
    pub dash: Dash,
}

impl Look {
    /// A measured series: the construction's colour, the backend's marker, the precision's line.
    pub fn measured(hue: Hue, marker: Marker, dash: Dash) -> Self {
        Self { hue, marker, dash }
    }

    /// A formula or reference curve (long dashes, no marker).
    pub fn formula(hue: Hue) -> Self {
        Self { hue, marker: Marker::None, dash: Dash::Dashed }
    }

    /// A bound, threshold or format limit (dots, no marker).
    pub fn bound(hue: Hue) -> Self {
        Self { hue, marker: Marker::None, dash: Dash::Dotted }
    }
}
