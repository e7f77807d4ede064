//! # boltz-train
//!
//! Gradient training of the suite's model class — a stack of blocks, each softmax self-attention (heads
//! with dense or rank-r factored `W_Q, W_K, W_V, W_O`, optional query bias, causal or not) and a ReLU FFN,
//! both with residual connections — so that what gradient descent finds can be set beside what the
//! constructions build (issue #19).
//!
//! * [`ModelShape`] and [`init_model`]: a model of a given shape with seeded random weights;
//! * [`loss_and_gradient`]: the mean per-token [`Loss`] — squared error to the targets (the
//!   constructions' decode rule reads the target column) or cross-entropy over label classes — and its
//!   exact gradient by a hand-written backward pass over every stored parameter (factors of a rank-r
//!   weight get their own gradients). Each thread's group of sequences runs together: attention per
//!   sequence, every dense FFN forward and backward as products over the group's tokens in tiles, on the
//!   CPU engine's multiplier (`boltz_cpu::engine::Gemm` by `MatrixMultiply`, with its narrow-output
//!   kernel and its small-product rule);
//! * [`train`] with [`TrainConfig`]: Adam, deterministic for a seed and a thread count (sequences are split
//!   into fixed contiguous groups, one per thread, and the groups' gradients summed in group order), early
//!   stop at 100 % token accuracy, the loss curve in the [`TrainReport`].
//!
//! The forward it differentiates is the reference backend's ([`boltz_core::ReferenceBackend`]): scores
//! `k_i·q_j` without scaling, softmax shifted by the maximum, residual sums. The tests check the gradient
//! against central finite differences of the *reference backend's* loss (independent code) in f64.

mod adam;
mod capacity;
mod grad;
mod init;
mod loss;

pub use adam::{train, TrainConfig, TrainReport};
pub use capacity::{trained_capacity, Capacity, CapacityProbe, CapacityReport, CapacitySearch};
pub use grad::{loss_and_gradient, loss_and_gradient_on, parameters, with_parameters, Evaluation, Gradient};
pub use init::{init_model, ModelShape};
pub use loss::Loss;

use boltz_core::Float;
use boltz_cpu::CpuFloat;

/// The element types training runs in (f32 and f64), with the arithmetic it needs.
pub trait Scalar:
    Float
    + CpuFloat
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
{
    /// `x` rounded to this type.
    fn lit(x: f64) -> Self;
    /// Square root.
    fn sqrt_(self) -> Self;
    /// `e^x`.
    fn exp_(self) -> Self;
}

macro_rules! scalar {
    ($t:ty) => {
        impl Scalar for $t {
            fn lit(x: f64) -> Self {
                x as $t
            }
            fn sqrt_(self) -> Self {
                self.sqrt()
            }
            fn exp_(self) -> Self {
                self.exp()
            }
        }
    };
}
scalar!(f32);
scalar!(f64);
