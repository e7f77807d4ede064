//! The element types that models, datasets and the reference forward are generic over.

use std::fmt::{Debug, Display};

use crate::exact::ExactConvert;

/// A real-number element type: `f32`, `f64`, or (in `boltz-bigfloat`) an arbitrary-precision float.
///
/// Operations take references so that heap-allocated big floats are not cloned needlessly. The
/// precision of a result is the type's (for `f32`/`f64`) or, for arbitrary-precision types, that of the
/// more precise operand; a value made by [`Real::from_f64`] carries exactly the f64 it came from, so
/// `from_f64(0.0).add(&x)` has the precision of `x`.
pub trait Real: Clone + Debug + Display + PartialEq + PartialOrd + Send + Sync + ExactConvert + 'static {
    /// Name of the element type in results: `"f32"`, `"f64"`, `"bigfloat"`.
    const DTYPE: &'static str;

    /// The exact value of `x` (rounded to nearest for types narrower than f64).
    fn from_f64(x: f64) -> Self;
    /// The nearest f64 (may be 0 or ±inf for values beyond f64's range).
    fn to_f64(&self) -> f64;
    /// Mantissa bits of this value's precision (24, 53, or the chosen precision).
    fn mantissa_bits(&self) -> u64;
    /// Whether the value is neither NaN nor infinite.
    fn is_finite(&self) -> bool;

    /// `self + rhs`.
    fn add(&self, rhs: &Self) -> Self;
    /// `self - rhs`.
    fn sub(&self, rhs: &Self) -> Self;
    /// `self · rhs`.
    fn mul(&self, rhs: &Self) -> Self;
    /// `self / rhs`.
    fn div(&self, rhs: &Self) -> Self;
    /// `-self`.
    fn neg(&self) -> Self;
    /// `e^self`.
    fn exp(&self) -> Self;

    /// `max(self, 0)`.
    fn relu(&self) -> Self {
        if *self > Self::from_f64(0.0) {
            self.clone()
        } else {
            Self::from_f64(0.0)
        }
    }
    /// `|self|`.
    fn abs(&self) -> Self {
        if *self < Self::from_f64(0.0) {
            self.neg()
        } else {
            self.clone()
        }
    }
}

macro_rules! impl_real_for_primitive {
    ($t:ty, $bits:expr) => {
        impl Real for $t {
            const DTYPE: &'static str = stringify!($t);
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(&self) -> f64 {
                f64::from(*self)
            }
            #[inline]
            fn mantissa_bits(&self) -> u64 {
                $bits
            }
            #[inline]
            fn is_finite(&self) -> bool {
                <$t>::is_finite(*self)
            }
            #[inline]
            fn add(&self, rhs: &Self) -> Self {
                self + rhs
            }
            #[inline]
            fn sub(&self, rhs: &Self) -> Self {
                self - rhs
            }
            #[inline]
            fn mul(&self, rhs: &Self) -> Self {
                self * rhs
            }
            #[inline]
            fn div(&self, rhs: &Self) -> Self {
                self / rhs
            }
            #[inline]
            fn neg(&self) -> Self {
                -self
            }
            #[inline]
            fn exp(&self) -> Self {
                <$t>::exp(*self)
            }
            #[inline]
            fn relu(&self) -> Self {
                self.max(0.0)
            }
            #[inline]
            fn abs(&self) -> Self {
                <$t>::abs(*self)
            }
        }
    };
}

impl_real_for_primitive!(f32, 24);
impl_real_for_primitive!(f64, 53);

/// Element types with a fixed hardware width, for code paths (SIMD, BLAS, CUDA) that need `Copy`.
pub trait Float: Real + Copy + Default {
    /// Unit roundoff `2^-mantissa_bits`.
    const EPSILON: f64;

    /// `self · a + b` rounded once (IEEE 754 fusedMultiplyAdd). One instruction in code compiled with the
    /// `fma` target feature (or on aarch64); elsewhere a library call, so kernels without that feature
    /// multiply and add instead.
    fn mul_add(self, a: Self, b: Self) -> Self;
}

impl Float for f32 {
    const EPSILON: f64 = f32::EPSILON as f64 / 2.0;

    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
}

impl Float for f64 {
    const EPSILON: f64 = f64::EPSILON / 2.0;

    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
}
