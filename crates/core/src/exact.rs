//! Exact binary floating-point values of any mantissa length, and their text encoding.
//!
//! The paper's constructions need far more than 53 mantissa bits (Theorem 2's worst-case δ underflows f64), so
//! weights and datasets must be storable exactly at any precision. An [`ExactFloat`] is the value
//! `(-1)^negative · mantissa · 2^exponent` with an arbitrary-length integer mantissa. Its text form is a
//! C99 hexadecimal float with an integer mantissa, e.g. `-0x1b3p-12` = −0x1b3 · 2⁻¹², which
//! Python reads exactly with
//!
//! ```python
//! from fractions import Fraction
//! def exact(s):
//!     sign = -1 if s[0] == '-' else 1
//!     m, e = s.lstrip('+-')[2:].split('p')
//!     return sign * int(m, 16) * Fraction(2) ** int(e)
//! ```
//!
//! (`float.fromhex(s)` also accepts it, rounding to a double.)

use std::fmt;

use crate::error::{Error, Result};

/// `(-1)^negative · mantissa · 2^exponent`, kept in canonical form: the mantissa is odd (or the value
/// is zero, stored as an empty mantissa with exponent 0 and `negative = false`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExactFloat {
    negative: bool,
    /// Little-endian 64-bit limbs, no trailing zero limbs.
    mantissa: Vec<u64>,
    exponent: i64,
}

/// Something that converts to and from [`ExactFloat`]: the element types of models and datasets.
///
/// `to_exact` is lossless. `from_exact` rounds to nearest, ties to even, where the type has fewer
/// mantissa bits than the value; values beyond the type's range become infinite (and are then
/// rejected by the finiteness checks of every constructor).
pub trait ExactConvert: Sized {
    /// The exact value of `self`.
    fn to_exact(&self) -> ExactFloat;
    /// The nearest value of this type.
    fn from_exact(x: &ExactFloat) -> Self;
}

impl ExactFloat {
    /// Zero.
    pub fn zero() -> Self {
        Self { negative: false, mantissa: Vec::new(), exponent: 0 }
    }

    /// `(-1)^negative · mantissa · 2^exponent` from little-endian 64-bit limbs; normalises.
    pub fn from_parts(negative: bool, mantissa: Vec<u64>, exponent: i64) -> Self {
        let mut x = Self { negative, mantissa, exponent };
        x.normalize();
        x
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa.is_empty()
    }

    /// Whether the value is negative (zero is not).
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Little-endian limbs of the (odd) mantissa.
    pub fn mantissa(&self) -> &[u64] {
        &self.mantissa
    }

    /// Binary exponent of the least significant mantissa bit.
    pub fn exponent(&self) -> i64 {
        self.exponent
    }

    /// Number of significant bits (0 for zero).
    pub fn mantissa_bits(&self) -> u64 {
        bit_len(&self.mantissa)
    }

    /// `log2 |x|` to f64 accuracy for any magnitude (`-inf` for zero): the exponent plus the log of the
    /// leading 64 mantissa bits, so values far beyond f64's range keep their fractional part (reading
    /// only the exponent would be up to one binary order, 0.3 decimal orders, low).
    pub fn log2_abs(&self) -> f64 {
        let len = self.mantissa_bits();
        if len == 0 {
            return f64::NEG_INFINITY;
        }
        // The top (up to) 64 bits as an integer `top`, so that |x| = top · 2^(exponent + len − taken) · (1 + tail).
        let taken = len.min(64);
        let shift = len - taken;
        let (word, bit) = ((shift / 64) as usize, shift % 64);
        let lo = self.mantissa[word] >> bit;
        let hi = if bit > 0 { self.mantissa.get(word + 1).map_or(0, |w| w << (64 - bit)) } else { 0 };
        let top = (lo | hi) as f64;
        top.log2() + (self.exponent as f64 + shift as f64)
    }

    fn normalize(&mut self) {
        while self.mantissa.last() == Some(&0) {
            self.mantissa.pop();
        }
        if self.mantissa.is_empty() {
            *self = Self::zero();
            return;
        }
        let tz = trailing_zeros(&self.mantissa);
        if tz > 0 {
            self.mantissa = shr(&self.mantissa, tz);
            self.exponent += tz as i64;
        }
    }

    /// Parses the text form written by [`fmt::Display`]: `[+-]0x<hex digits>p[+-]<decimal exponent>`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Format(format!("invalid exact float {s:?}: {why}"));
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let rest = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")).ok_or_else(|| bad("expected a 0x prefix"))?;
        let (digits, exp) = rest.split_once(['p', 'P']).ok_or_else(|| bad("expected a binary exponent 'p<e>'"))?;
        if digits.is_empty() {
            return Err(bad("no mantissa digits"));
        }
        let exponent: i64 = exp.parse().map_err(|_| bad("exponent is not an integer"))?;
        let mut limbs = vec![0u64; digits.len().div_ceil(16)];
        for (i, c) in digits.bytes().rev().enumerate() {
            let v = (c as char).to_digit(16).ok_or_else(|| bad("mantissa is not hexadecimal"))? as u64;
            limbs[i / 16] |= v << (4 * (i % 16));
        }
        Ok(Self::from_parts(negative, limbs, exponent))
    }

    /// Rounds to `bits` significant bits (ties to even) with the least significant kept bit at
    /// exponent ≥ `min_lsb_exponent` (the subnormal limit). Returns `(negative, mantissa, exponent)`
    /// with `mantissa < 2^64` (it may equal `2^bits` after rounding up).
    fn round_to(&self, bits: u64, min_lsb_exponent: i64) -> (bool, u64, i64) {
        debug_assert!(bits <= 63);
        if self.is_zero() {
            return (false, 0, 0);
        }
        let len = self.mantissa_bits() as i64;
        let lsb = (self.exponent + len - bits as i64).max(min_lsb_exponent);
        if lsb <= self.exponent {
            // Fits: the mantissa has at most `bits` bits here.
            let shift = (self.exponent - lsb) as u64;
            let m = self.mantissa.first().copied().unwrap_or(0) << shift;
            return (self.negative, m, lsb);
        }
        let drop = (lsb - self.exponent) as u64;
        if drop > len as u64 + 1 {
            // Far below half an ulp: rounds to zero (sign kept for -0 handling by the caller).
            return (self.negative, 0, lsb);
        }
        let kept = shr(&self.mantissa, drop);
        let mut m = kept.first().copied().unwrap_or(0);
        let half = bit(&self.mantissa, drop - 1);
        let sticky = drop >= 2 && low_bits_nonzero(&self.mantissa, drop - 1);
        if half && (sticky || m & 1 == 1) {
            m += 1;
        }
        (self.negative, m, lsb)
    }
}

impl fmt::Display for ExactFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        f.write_str("0x")?;
        match self.mantissa.split_last() {
            None => f.write_str("0")?,
            Some((top, rest)) => {
                write!(f, "{top:x}")?;
                for limb in rest.iter().rev() {
                    write!(f, "{limb:016x}")?;
                }
            }
        }
        let e = self.exponent;
        if e < 0 {
            write!(f, "p{e}")
        } else {
            write!(f, "p+{e}")
        }
    }
}

impl ExactConvert for ExactFloat {
    fn to_exact(&self) -> ExactFloat {
        self.clone()
    }
    fn from_exact(x: &ExactFloat) -> Self {
        x.clone()
    }
}

impl ExactConvert for f64 {
    fn to_exact(&self) -> ExactFloat {
        assert!(self.is_finite(), "invariant: only finite values are converted to ExactFloat");
        let bits = self.to_bits();
        let negative = bits >> 63 == 1;
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if biased == 0 { (frac, -1074) } else { (frac | (1u64 << 52), biased - 1075) };
        ExactFloat::from_parts(negative && m != 0, vec![m], e)
    }
    fn from_exact(x: &ExactFloat) -> Self {
        let (neg, m, e) = x.round_to(53, -1074);
        let v = if e > 971 + 53 { f64::INFINITY } else { libm::scalbn(m as f64, e as i32) };
        if neg {
            -v
        } else {
            v
        }
    }
}

impl ExactConvert for f32 {
    fn to_exact(&self) -> ExactFloat {
        f64::from(*self).to_exact()
    }
    fn from_exact(x: &ExactFloat) -> Self {
        let (neg, m, e) = x.round_to(24, -149);
        let v = if e > 104 + 24 { f32::INFINITY } else { libm::scalbnf(m as f32, e as i32) };
        if neg {
            -v
        } else {
            v
        }
    }
}

fn bit_len(limbs: &[u64]) -> u64 {
    match limbs.last() {
        None => 0,
        Some(top) => 64 * (limbs.len() as u64 - 1) + (64 - top.leading_zeros() as u64),
    }
}

fn trailing_zeros(limbs: &[u64]) -> u64 {
    let mut tz = 0;
    for &l in limbs {
        if l == 0 {
            tz += 64;
        } else {
            return tz + l.trailing_zeros() as u64;
        }
    }
    tz
}

fn bit(limbs: &[u64], i: u64) -> bool {
    limbs.get((i / 64) as usize).is_some_and(|l| (l >> (i % 64)) & 1 == 1)
}

/// Whether any of the lowest `count` bits is set.
fn low_bits_nonzero(limbs: &[u64], count: u64) -> bool {
    let full = (count / 64) as usize;
    if limbs.iter().take(full).any(|&l| l != 0) {
        return true;
    }
    let rem = count % 64;
    rem > 0 && limbs.get(full).is_some_and(|l| l & ((1u64 << rem) - 1) != 0)
}

fn shr(limbs: &[u64], shift: u64) -> Vec<u64> {
    let (words, bits) = ((shift / 64) as usize, (shift % 64) as u32);
    if words >= limbs.len() {
        return Vec::new();
    }
    let src = &limbs[words..];
    let mut out = Vec::with_capacity(src.len());
    for i in 0..src.len() {
        let lo = src[i] >> bits;
        let hi = if bits > 0 { src.get(i + 1).map_or(0, |h| h << (64 - bits)) } else { 0 };
        out.push(lo | hi);
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_abs_is_exact_beyond_f64() {
        for x in [1.0f64, 3.0, 0.1, -7.5e-300, 1e300, 5e-324] {
            assert!((x.to_exact().log2_abs() - x.abs().log2()).abs() < 1e-12, "{x}");
        }
        // 3 · 2^-5000: log2 = log2 3 − 5000 (the exponent alone would say −4999).
        let tiny = ExactFloat::from_parts(false, vec![3], -5000);
        assert!((tiny.log2_abs() - (3f64.log2() - 5000.0)).abs() < 1e-9);
        // A 130-bit mantissa: (2^129 + 2^128 + 1) · 2^-1000.
        let long = ExactFloat::from_parts(true, vec![1, 0, 3], -1000);
        assert!((long.log2_abs() - (1.5f64.log2() + 129.0 - 1000.0)).abs() < 1e-9, "{}", long.log2_abs());
        assert_eq!(ExactFloat::zero().log2_abs(), f64::NEG_INFINITY);
    }
    use proptest::prelude::*;

    #[test]
    fn text_form_examples() {
        assert_eq!(1.0f64.to_exact().to_string(), "0x1p+0");
        assert_eq!((-0.75f64).to_exact().to_string(), "-0x3p-2");
        assert_eq!(0.0f64.to_exact().to_string(), "0x0p+0");
        assert_eq!(ExactFloat::parse("0x1b3p-12").map(|x| f64::from_exact(&x)).ok(), Some(435.0 / 4096.0));
        assert_eq!(ExactFloat::parse("0x0010p+0").map(|x| x.to_string()).ok().as_deref(), Some("0x1p+4"));
    }

    #[test]
    fn parse_rejects_garbage() {
        for s in ["", "1.5", "0x", "0xp3", "0x1g p1", "0x12", "0x12pz", "--0x1p1"] {
            assert!(ExactFloat::parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn rounding_to_f64_is_ties_to_even() {
        // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: rounds to the even 2^53.
        let x = ExactFloat::from_parts(false, vec![(1u64 << 53) + 1], 0);
        assert_eq!(f64::from_exact(&x), 9007199254740992.0);
        // 2^53 + 3 is a tie between 2^53 + 2 and 2^53 + 4: rounds to 2^53 + 4.
        let x = ExactFloat::from_parts(false, vec![(1u64 << 53) + 3], 0);
        assert_eq!(f64::from_exact(&x), 9007199254740996.0);
        // Slightly above the tie rounds up (sticky bit far below).
        let x = ExactFloat::from_parts(false, vec![1, 0, 1u64 << 20], 0);
        let y = 2f64.powi(148);
        assert_eq!(f64::from_exact(&x), y);
        // 4096-bit mantissa 1 + 2^-4095 rounds to 1.
        let mut limbs = vec![0u64; 64];
        limbs[0] = 1;
        limbs[63] = 1u64 << 63;
        let x = ExactFloat::from_parts(false, limbs, -4095);
        assert_eq!(f64::from_exact(&x), 1.0);
    }

    #[test]
    fn subnormals_and_overflow() {
        let tiny = f64::from_bits(1);
        assert_eq!(f64::from_exact(&tiny.to_exact()), tiny);
        assert_eq!(f32::from_exact(&f32::from_bits(3).to_exact()), f32::from_bits(3));
        // Half of the smallest subnormal is a tie with zero: rounds to (even) zero.
        let half = ExactFloat::from_parts(false, vec![1], -1075);
        assert_eq!(f64::from_exact(&half), 0.0);
        let big = ExactFloat::from_parts(false, vec![1], 1024);
        assert!(f64::from_exact(&big).is_infinite());
        assert!(f32::from_exact(&1e39f64.to_exact()).is_infinite());
        assert_eq!(f32::from_exact(&3.0e38f64.to_exact()), 3.0e38f32);
    }

    proptest! {
        #[test]
        fn f64_round_trips_through_text(x in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let e = x.to_exact();
            let back = ExactFloat::parse(&e.to_string()).map(|p| f64::from_exact(&p));
            prop_assert_eq!(back.map(f64::to_bits).ok(), Some(if x == 0.0 { 0.0f64.to_bits() } else { x.to_bits() }));
        }

        #[test]
        fn f32_round_trips_and_matches_cast(x in proptest::num::f64::NORMAL) {
            prop_assume!(x.abs() < 3.4e38);
            let f = x as f32;
            prop_assert_eq!(f32::from_exact(&x.to_exact()).to_bits(), f.to_bits());
            prop_assert_eq!(f32::from_exact(&f.to_exact()).to_bits(), f.to_bits());
        }

        #[test]
        fn long_mantissas_round_trip(limbs in proptest::collection::vec(any::<u64>(), 1..70), e in -5000i64..5000, neg: bool) {
            let x = ExactFloat::from_parts(neg, limbs, e);
            prop_assert_eq!(ExactFloat::parse(&x.to_string()).ok(), Some(x));
        }
    }
}
