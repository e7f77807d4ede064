//! Full-batch Adam training, deterministic for a seed and a thread count, with early stop at 100 % token
//! accuracy and the loss curve in the report.

use crate::grad::{loss_and_gradient, parameters, with_parameters};
use crate::loss::Loss;
use crate::Scalar;
use boltz_core::{Dataset, Error, Model, Result};
use serde::{Deserialize, Serialize};

/// How [`train`] trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Adam steps at most (full batch: every step sees every sequence).
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// Adam's β₁.
    pub beta1: f64,
    /// Adam's β₂.
    pub beta2: f64,
    /// Adam's ε.
    pub eps: f64,
    /// Threads (sequence groups).
    pub threads: usize,
    /// Stop as soon as every token decodes (100 % token accuracy).
    pub early_stop: bool,
    /// Record the loss every this many steps (and at the first and last step).
    pub log_every: usize,
    /// The per-token loss (absent in older records: squared error).
    #[serde(default)]
    pub loss: Loss,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 2000,
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            threads: 1,
            early_stop: true,
            log_every: 10,
            loss: Loss::SquaredError,
        }
    }
}

/// What a training run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Steps taken.
    pub steps: usize,
    /// `(step, loss, token accuracy)` at every logged step, the loss before that step's update.
    pub curve: Vec<(usize, f64, f64)>,
    /// Loss of the returned model.
    pub final_loss: f64,
    /// Token accuracy of the returned model.
    pub final_accuracy: f64,
    /// Whether every token decodes.
    pub memorized: bool,
}

/// Trains `model` on `data` with full-batch Adam, calling `on_step(step, loss, accuracy)` after every
/// evaluation. A non-finite loss is an error naming the step.
pub fn train<T: Scalar>(
    model: &mut Model<T>,
    data: &Dataset<T>,
    cfg: &TrainConfig,
    mut on_step: impl FnMut(usize, f64, f64),
) -> Result<TrainReport> {
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(Error::InvalidParameter { name: "lr".into(), reason: format!("must be positive and finite, got {}", cfg.lr) });
    }
    if !(0.0..1.0).contains(&cfg.beta1) || !(0.0..1.0).contains(&cfg.beta2) {
        return Err(Error::InvalidParameter { name: "beta1/beta2".into(), reason: "must lie in [0, 1)".into() });
    }
    let sizes: Vec<usize> = parameters(model).iter().map(Vec::len).collect();
    let mut m1: Vec<Vec<f64>> = sizes.iter().map(|&s| vec![0.0; s]).collect();
    let mut m2 = m1.clone();
    let mut curve = Vec::new();
    let log_every = cfg.log_every.max(1);
    let mut step = 0;
    loop {
        let mut eval = loss_and_gradient(model, data, cfg.loss, cfg.threads)?;
        let accuracy = eval.decoded as f64 / eval.tokens as f64;
        if !eval.loss.is_finite() {
            return Err(Error::Infeasible(format!("the loss became non-finite at step {step} (lower the learning rate)")));
        }
        on_step(step, eval.loss, accuracy);
        let done = step == cfg.steps || (cfg.early_stop && eval.decoded == eval.tokens);
        if step % log_every == 0 || done {
            curve.push((step, eval.loss, accuracy));
        }
        if done {
            return Ok(TrainReport {
                steps: step,
                curve,
                final_loss: eval.loss,
                final_accuracy: accuracy,
                memorized: eval.decoded == eval.tokens,
            });
        }
        step += 1;
        let (c1, c2) = (1.0 - cfg.beta1.powi(step as i32), 1.0 - cfg.beta2.powi(step as i32));
        let mut params = parameters(model);
        for (((p, g), a), b) in params.iter_mut().zip(eval.gradient.tensors_mut()).zip(&mut m1).zip(&mut m2) {
            for (((pi, gi), ai), bi) in p.iter_mut().zip(g.iter()).zip(a.iter_mut()).zip(b.iter_mut()) {
                let gf = gi.to_f64();
                *ai = cfg.beta1 * *ai + (1.0 - cfg.beta1) * gf;
                *bi = cfg.beta2 * *bi + (1.0 - cfg.beta2) * gf * gf;
                let update = cfg.lr * (*ai / c1) / ((*bi / c2).sqrt() + cfg.eps);
                *pi = *pi - T::lit(update);
            }
        }
        *model = with_parameters(model, &params)?;
    }
}

// ---------------------------------------------------------------------------------------------------
// Trained capacity
