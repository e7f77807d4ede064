//! The training losses: squared error to the target vectors, cross-entropy over the label classes.

use crate::Scalar;
use boltz_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The per-token loss training minimises, and the decode rule its token accuracy counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Loss {
    /// `‖F(X)_{:,k} − Y_{:,k}‖²` (the constructions' decode rule: a token decodes when every output
    /// coordinate is within ½ of its target).
    #[default]
    SquaredError,
    /// Cross-entropy over label classes: the first `classes` output coordinates are the logits, the class
    /// is the target's `label_coord` coordinate (an integer in `0..classes`); a token decodes when its
    /// label's logit is the unique largest.
    CrossEntropy {
        /// Label classes C (2 ≤ C ≤ d).
        classes: usize,
        /// The target coordinate that holds the label.
        label_coord: usize,
    },
}

impl Loss {
    /// Refuses a loss `data` and a `dim`-dimensional model cannot use, naming the cause.
    pub fn check<T: Scalar>(&self, dim: usize, targets: &boltz_core::Batch<T>) -> Result<()> {
        let Self::CrossEntropy { classes, label_coord } = *self else { return Ok(()) };
        if classes < 2 || classes > dim {
            return Err(Error::InvalidParameter {
                name: "classes".into(),
                reason: format!("cross-entropy reads its {classes} logits from the d = {dim} output coordinates: need 2 ≤ classes ≤ d"),
            });
        }
        if label_coord >= dim {
            return Err(Error::InvalidParameter { name: "label_coord".into(), reason: format!("{label_coord} is not below d = {dim}") });
        }
        let [big_n, n, _] = targets.shape();
        for b in 0..big_n {
            for k in 0..n {
                if class_of(targets.token(b, k)[label_coord].to_f64(), classes).is_none() {
                    return Err(Error::InvalidParameter {
                        name: "targets".into(),
                        reason: format!(
                            "cross-entropy needs an integer label in 0..{classes} at coordinate {label_coord}; sequence {b}, token {k} has {}",
                            targets.token(b, k)[label_coord].to_f64()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether `output` decodes to `target` under this loss's rule.
    pub fn decodes(&self, output: &[f64], target: &[f64]) -> bool {
        match *self {
            Self::SquaredError => output.iter().zip(target).all(|(o, t)| (o - t).abs() < 0.5),
            Self::CrossEntropy { classes, label_coord } => match class_of(target[label_coord], classes) {
                Some(c) => output[..classes].iter().enumerate().all(|(i, &z)| i == c || z < output[c]),
                None => false,
            },
        }
    }

    /// The share of tokens of `outputs` that decode to `targets` (same shapes).
    pub fn accuracy(&self, outputs: &boltz_core::Batch<f64>, targets: &boltz_core::Batch<f64>) -> Result<f64> {
        if outputs.shape() != targets.shape() {
            return Err(Error::ShapeMismatch {
                tensor: "outputs".into(),
                expected: format!("{:?}", targets.shape()),
                found: format!("{:?}", outputs.shape()),
            });
        }
        let [big_n, n, _] = targets.shape();
        let hits = (0..big_n)
            .flat_map(|b| (0..n).map(move |k| (b, k)))
            .filter(|&(b, k)| self.decodes(outputs.token(b, k), targets.token(b, k)))
            .count();
        Ok(hits as f64 / (big_n * n).max(1) as f64)
    }

    /// The loss of one token, whether it decodes, and `d loss / d output` times `scale`.
    pub(crate) fn token<T: Scalar>(&self, output: &[T], target: &[T], scale: T) -> (f64, bool, Vec<T>) {
        match *self {
            Self::SquaredError => {
                let diff: Vec<T> = output.iter().zip(target).map(|(&a, &t)| a - t).collect();
                let loss = diff.iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>();
                let decoded = diff.iter().all(|x| x.to_f64().abs() < 0.5);
                (loss, decoded, diff.iter().map(|&x| x * scale).collect())
            }
            Self::CrossEntropy { classes, label_coord } => {
                // Checked by `check`: the label is an integer class.
                let c = class_of(target[label_coord].to_f64(), classes).unwrap_or(0);
                let logits = &output[..classes];
                let max = logits.iter().copied().fold(logits[0], |a, b| if b > a { b } else { a });
                let e: Vec<T> = logits.iter().map(|&z| (z - max).exp_()).collect();
                let total = e.iter().fold(T::lit(0.0), |a, &b| a + b);
                let loss = (total.to_f64()).ln() - (logits[c] - max).to_f64();
                let decoded = logits.iter().enumerate().all(|(i, &z)| i == c || z < logits[c]);
                let mut grad = vec![T::lit(0.0); output.len()];
                for (i, g) in grad[..classes].iter_mut().enumerate() {
                    let p = e[i] / total;
                    *g = (if i == c { p - T::lit(1.0) } else { p }) * scale;
                }
                (loss, decoded, grad)
            }
        }
    }

    /// The factor of the per-token gradient: squared error is `2/(Nn)`, cross-entropy `1/(Nn)`.
    pub(crate) fn scale(&self, tokens: usize) -> f64 {
        match self {
            Self::SquaredError => 2.0 / tokens as f64,
            Self::CrossEntropy { .. } => 1.0 / tokens as f64,
        }
    }
}

/// The class a label value names: an integer in `0..classes`.
pub(crate) fn class_of(v: f64, classes: usize) -> Option<usize> {
    (v.fract() == 0.0 && v >= 0.0 && v < classes as f64).then_some(v as usize)
}
