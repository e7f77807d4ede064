//! [`BigReal`]: an arbitrary-precision binary float that implements [`Real`].

use std::cmp::Ordering;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};

use astro_float::{BigFloat, Consts, RoundingMode, Sign, Word};
use boltz_core::{ExactConvert, ExactFloat, Real};

/// Smallest supported precision in bits.
pub const MIN_BITS: u64 = 2;
/// Largest supported precision in bits (2²⁴ ≈ 16.8 million): beyond it a single exp takes hours.
pub const MAX_BITS: u64 = 1 << 24;

const RM: RoundingMode = RoundingMode::ToEven;

/// A binary floating-point number with a precision of `bits` mantissa bits.
///
/// Arithmetic follows [`Real`]'s rule: a result has the precision of the more precise operand (the
/// arbitrary-precision backend therefore makes every weight, input and constant at its own precision, so
/// that every operation of a forward runs at exactly `bits` bits — checked by [`PrecisionAudit`]).
///
/// **Every operation (`+ − × ÷ exp`) is correctly rounded to `bits` bits, ties to even** — `p`-bit
/// arithmetic in the IEEE sense (with an unbounded exponent): at 24 bits it is binary32 arithmetic, at 53
/// bits binary64 arithmetic, bit for bit. `astro-float` rounds correctly to multiples of 64 bits; for other
/// precisions a result is first computed correctly rounded at `q = ⌈bits/64⌉·64 > bits` bits and then
/// rounded to `bits`. That second rounding can only go wrong when the `q`-bit result lies exactly on a
/// midpoint between two `bits`-bit numbers (the dropped bits read `10…0`); then the operation is
/// recomputed — `+ − × ÷` at `q ≥ 2·bits + 2` bits, where double rounding is innocuous (Figueroa, *When is
/// double rounding innocuous?*, SIGNUM 1995), `exp` with 64 more bits at a time until the result is off the
/// midpoint (`exp` of a non-zero dyadic is irrational, so it never lies on one).
///
/// The mantissa is *not* padded: a value that needs fewer bits (e.g. a weight `0.5` at 16 384 bits) keeps
/// its short mantissa, which makes products with it cheap. The exponent range is that of `astro-float`
/// (about ±2³¹ binary orders of magnitude), so `exp` of attention logits up to ~10⁹ neither overflows nor
/// underflows.
#[derive(Clone)]
pub struct BigReal {
    value: BigFloat,
    bits: u32,
}

static AUDIT_ON: AtomicBool = AtomicBool::new(false);
static AUDIT_MIN: AtomicU64 = AtomicU64::new(u64::MAX);
static AUDIT_MAX: AtomicU64 = AtomicU64::new(0);
static AUDIT_VALUES: AtomicU64 = AtomicU64::new(0);

/// Records the precision of every [`BigReal`] produced while it runs (process-wide): a test wraps a
/// forward in it to prove that no literal, constant, count or intermediate carries another precision than
/// the backend's. One audit at a time; run it in a test binary of its own (other threads' values count too).
#[derive(Debug)]
pub struct PrecisionAudit(());

/// What a [`PrecisionAudit`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Values produced (by arithmetic, `exp`, rounding or conversion).
    pub values: u64,
    /// Smallest precision among them (`u64::MAX` when none).
    pub min_bits: u64,
    /// Largest precision among them (0 when none).
    pub max_bits: u64,
}

impl PrecisionAudit {
    /// Starts recording (resets the counters).
    pub fn start() -> Self {
        AUDIT_MIN.store(u64::MAX, AtomicOrdering::SeqCst);
        AUDIT_MAX.store(0, AtomicOrdering::SeqCst);
        AUDIT_VALUES.store(0, AtomicOrdering::SeqCst);
        AUDIT_ON.store(true, AtomicOrdering::SeqCst);
        Self(())
    }

    /// Stops recording and reports.
    pub fn finish(self) -> AuditReport {
        AUDIT_ON.store(false, AtomicOrdering::SeqCst);
        AuditReport {
            values: AUDIT_VALUES.load(AtomicOrdering::SeqCst),
            min_bits: AUDIT_MIN.load(AtomicOrdering::SeqCst),
            max_bits: AUDIT_MAX.load(AtomicOrdering::SeqCst),
        }
    }
}

impl Drop for PrecisionAudit {
    fn drop(&mut self) {
        AUDIT_ON.store(false, AtomicOrdering::SeqCst);
    }
}

impl BigReal {
    /// Every produced value passes here (cheap unless a [`PrecisionAudit`] runs).
    fn made(value: BigFloat, bits: u32) -> Self {
        if AUDIT_ON.load(AtomicOrdering::Relaxed) {
            AUDIT_VALUES.fetch_add(1, AtomicOrdering::Relaxed);
            AUDIT_MIN.fetch_min(u64::from(bits), AtomicOrdering::Relaxed);
            AUDIT_MAX.fetch_max(u64::from(bits), AtomicOrdering::Relaxed);
        }
        Self { value, bits }
    }

    /// `value` rounded to `bits` bits.
    pub fn new(value: BigFloat, bits: u64) -> Self {
        let bits = bits.clamp(MIN_BITS, MAX_BITS) as u32;
        Self::made(round_to_bits(value, bits), bits)
    }

    /// Zero at precision `bits`.
    pub fn zero(bits: u64) -> Self {
        Self::new(BigFloat::from_word(0, 64), bits)
    }

    /// `x` rounded to (and tagged with) precision `bits`, without passing through a 53-bit value.
    pub fn from_f64_with_bits(x: f64, bits: u64) -> Self {
        Self::from_exact_with_bits(&x.to_exact(), bits)
    }

    /// The exact value of `x`, tagged with precision `bits`, rounded to it.
    pub fn from_exact_with_bits(x: &ExactFloat, bits: u64) -> Self {
        Self::new(exact_to_bigfloat(x), bits)
    }

    /// The precision p (bits) this value was rounded to.
    pub fn bits(&self) -> u64 {
        u64::from(self.bits)
    }

    /// This value rounded to (and tagged with) precision `bits`.
    pub fn with_bits(&self, bits: u64) -> Self {
        Self::new(self.value.clone(), bits)
    }

    /// The underlying `astro-float` value.
    pub fn as_bigfloat(&self) -> &BigFloat {
        &self.value
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.value.is_zero()
    }

    fn binary(&self, rhs: &Self, op: impl Fn(&BigFloat, &BigFloat, usize) -> BigFloat) -> Self {
        let bits = self.bits.max(rhs.bits);
        let value = correctly_rounded(bits, |q| op(&self.value, &rhs.value, q), Retry::Arithmetic);
        Self::made(value, bits)
    }

    /// `log2 |x|` estimate from the exponent (for reports; `-inf` for zero).
    pub fn log2_abs(&self) -> f64 {
        match (self.value.exponent(), self.value.as_raw_parts()) {
            _ if self.value.is_zero() => f64::NEG_INFINITY,
            (Some(e), Some((m, ..))) => {
                let top = m.last().copied().unwrap_or(0) as f64 / 2f64.powi(64);
                e as f64 + top.log2()
            }
            _ => f64::NAN,
        }
    }
}

fn word_bits(bits: u32) -> usize {
    (bits as usize).div_ceil(64) * 64
}

/// How [`correctly_rounded`] recomputes a result that landed on a midpoint.
#[derive(Clone, Copy)]
enum Retry {
    /// `+ − × ÷`: once, at `2·bits + 2` bits (double rounding is then innocuous).
    Arithmetic,
    /// `exp`: 64 more bits at a time (never exactly on a midpoint unless the argument is 0).
    Transcendental,
}

/// `op(q)` computes the result correctly rounded (ties to even) to `q` bits, `q` a multiple of 64; returns
/// it correctly rounded to `bits` (see [`BigReal`]'s docs for why this is correct).
fn correctly_rounded(bits: u32, op: impl Fn(usize) -> BigFloat, retry: Retry) -> BigFloat {
    let q = word_bits(bits);
    let value = op(q);
    if q == bits as usize || !on_midpoint(&value, bits) {
        return round_to_bits(value, bits);
    }
    match retry {
        Retry::Arithmetic => round_to_bits(op(word_bits(2 * bits + 2)), bits),
        Retry::Transcendental => {
            let mut value = value;
            for extra in 1..=16 {
                value = op(q + 64 * extra);
                if !on_midpoint(&value, bits) {
                    break;
                }
            }
            round_to_bits(value, bits)
        }
    }
}

/// Whether rounding `value` to `bits` bits is a tie: the dropped bits read exactly `10…0`.
fn on_midpoint(value: &BigFloat, bits: u32) -> bool {
    let Some((m, n, ..)) = value.as_raw_parts() else { return false };
    let total = m.len() * 64;
    if n < total || bits as usize >= total || value.is_zero() {
        return false;
    }
    let drop = total - bits as usize;
    let (w, b) = ((drop - 1) / 64, (drop - 1) % 64);
    (m[w] >> b) & 1 == 1 && m[..w].iter().all(|&x| x == 0) && (b == 0 || m[w] & ((1u64 << b) - 1) == 0)
}

/// Rounds a (normal, finite) value to `bits` significant bits, ties to even.
fn round_to_bits(value: BigFloat, bits: u32) -> BigFloat {
    let Some((m, n, sign, e, inexact)) = value.as_raw_parts() else { return value };
    let total = m.len() * 64;
    if n < total || bits as usize >= total || value.is_zero() {
        // Subnormal (n < total), or already short enough.
        return value;
    }
    let drop = total - bits as usize;
    let mut words: Vec<Word> = m.to_vec();
    let (full, rem) = (drop / 64, drop % 64);
    // Lowest dropped bits: words[..full] entirely and the low `rem` bits of words[full].
    let half_bit_word = (drop - 1) / 64;
    let half_bit = (drop - 1) % 64;
    let half = (words[half_bit_word] >> half_bit) & 1 == 1;
    let below_half = words[..half_bit_word].iter().any(|&w| w != 0) || (half_bit > 0 && words[half_bit_word] & ((1 << half_bit) - 1) != 0);
    let any_dropped = half || below_half;
    words[..full].fill(0);
    if rem > 0 {
        words[full] &= !((1 << rem) - 1);
    }
    let lsb = if full < words.len() { (words[full] >> rem) & 1 == 1 } else { false };
    let mut exp = e;
    if half && (below_half || lsb) {
        // Add one unit in the last kept place, with carry.
        let mut carry = 1u64 << rem;
        for w in &mut words[full..] {
            let (s, c) = w.overflowing_add(carry);
            *w = s;
            carry = u64::from(c);
            if carry == 0 {
                break;
            }
        }
        if carry == 1 {
            // Mantissa overflowed to 2^total: becomes 0.1000… with exponent + 1.
            words.fill(0);
            if let Some(top) = words.last_mut() {
                *top = 1 << 63;
            }
            exp = exp.saturating_add(1);
        }
    }
    // The `full` lowest words are now zero: drop them, so that later products pay only for `bits`.
    let kept = &words[full..];
    BigFloat::from_raw_parts(kept, kept.len() * 64, sign, exp, inexact || any_dropped)
}

fn exact_to_bigfloat(x: &ExactFloat) -> BigFloat {
    if x.is_zero() {
        return BigFloat::from_word(0, 64);
    }
    // value = M · 2^e with M of `len` bits  =  0.M · 2^(e + len).
    let len = x.mantissa_bits();
    let words = x.mantissa().len();
    let pad = (words * 64) as u64 - len;
    let mut m: Vec<Word> = x.mantissa().to_vec();
    if pad > 0 {
        // Shift left so that the top bit is the word's MSB.
        let mut carry = 0u64;
        for w in &mut m {
            let next = *w >> (64 - pad);
            *w = (*w << pad) | carry;
            carry = next;
        }
    }
    let sign = if x.is_negative() { Sign::Neg } else { Sign::Pos };
    let e = x.exponent().saturating_add(len as i64);
    let e = e.clamp(i64::from(astro_float::EXPONENT_MIN), i64::from(astro_float::EXPONENT_MAX)) as astro_float::Exponent;
    BigFloat::from_raw_parts(&m, words * 64, sign, e, false)
}

impl ExactConvert for BigReal {
    fn to_exact(&self) -> ExactFloat {
        match self.value.as_raw_parts() {
            Some((m, _, sign, e, _)) if !self.value.is_zero() => {
                ExactFloat::from_parts(sign == Sign::Neg, m.to_vec(), i64::from(e) - (m.len() * 64) as i64)
            }
            _ => ExactFloat::zero(),
        }
    }

    /// Exact: the precision is the value's own mantissa length (at least 53 bits).
    fn from_exact(x: &ExactFloat) -> Self {
        let bits = x.mantissa_bits().max(53);
        Self::from_exact_with_bits(x, bits)
    }
}

impl PartialEq for BigReal {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl PartialOrd for BigReal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl fmt::Debug for BigReal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BigReal({}, {} bits)", self.to_exact(), self.bits)
    }
}

impl fmt::Display for BigReal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let approx = self.to_f64();
        if approx != 0.0 && approx.is_finite() || self.is_zero() {
            write!(f, "{approx:e}")
        } else {
            write!(f, "2^{:.6} [{} bits]", self.log2_abs(), self.bits)
        }
    }
}

impl Real for BigReal {
    const DTYPE: &'static str = "bigfloat";

    /// The exact f64, at 53 bits. Inside a forward at another precision use
    /// [`BigReal::from_f64_with_bits`]: a 53-bit operand would raise the precision of every result it touches.
    fn from_f64(x: f64) -> Self {
        Self::from_exact_with_bits(&x.to_exact(), 53)
    }

    fn to_f64(&self) -> f64 {
        f64::from_exact(&self.to_exact())
    }

    fn mantissa_bits(&self) -> u64 {
        u64::from(self.bits)
    }

    fn is_finite(&self) -> bool {
        !(self.value.is_nan() || self.value.is_inf())
    }

    fn add(&self, rhs: &Self) -> Self {
        self.binary(rhs, |a, b, p| a.add(b, p, RM))
    }

    fn sub(&self, rhs: &Self) -> Self {
        self.binary(rhs, |a, b, p| a.sub(b, p, RM))
    }

    fn mul(&self, rhs: &Self) -> Self {
        self.binary(rhs, |a, b, p| a.mul(b, p, RM))
    }

    fn div(&self, rhs: &Self) -> Self {
        self.binary(rhs, |a, b, p| a.div(b, p, RM))
    }

    fn neg(&self) -> Self {
        Self::made(self.value.neg(), self.bits)
    }

    /// `max(self, 0)` at this value's precision (the trait's default would return a 53-bit zero).
    fn relu(&self) -> Self {
        if self.value.is_negative() || self.value.is_zero() {
            Self::zero(u64::from(self.bits))
        } else {
            self.clone()
        }
    }

    /// `|self|` at this value's precision.
    fn abs(&self) -> Self {
        if self.value.is_negative() {
            self.neg()
        } else {
            self.clone()
        }
    }

    /// Correctly rounded to `bits` (see [`BigReal`]). Each call uses a fresh constants cache, so the result
    /// depends only on the argument and the precision — never on which exponentials a thread computed before
    /// (astro-float's cached ln 2 can otherwise change the last bit, which made parallel runs differ between
    /// processes). NaN (and so a non-finite error downstream) if the cache cannot be built (memory
    /// allocation failure).
    fn exp(&self) -> Self {
        let value = correctly_rounded(
            self.bits,
            |q| match Consts::new() {
                Ok(mut cc) => self.value.exp(q, RM, &mut cc),
                Err(_) => astro_float::NAN,
            },
            Retry::Transcendental,
        );
        Self::made(value, self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f64, bits: u64) -> BigReal {
        BigReal::from_f64(x).with_bits(bits)
    }

    #[test]
    fn exact_round_trip() {
        for x in [1.0, -0.75, 3.0, 1e-300, 1e300, 0.1, -123456.789, 0.0] {
            assert_eq!(BigReal::from_f64(x).to_f64(), x);
            assert_eq!(BigReal::from_exact(&x.to_exact()).to_exact(), x.to_exact());
        }
        let long = ExactFloat::parse("0x1234567890abcdef1234567890abcdef1234567890abcdef3p-170").unwrap();
        assert_eq!(BigReal::from_exact(&long).to_exact(), long);
        assert_eq!(BigReal::from_exact(&long).mantissa_bits(), long.mantissa_bits());
    }

    #[test]
    fn rounding_to_odd_bit_counts_matches_f32_and_f64() {
        // 24-bit and 53-bit BigReal arithmetic agrees bit-for-bit with f32/f64 on these operations
        // (no double-rounding hazard for +,−,×,÷ from 64 to 53 or 24 bits: 64 ≥ 2·24+2, and for 53 we check).
        let xs = [1.0 / 3.0, 2.0f64.sqrt(), -7.25, 1e-3, 12345.678, 0.1];
        for &x in &xs {
            for &y in &xs {
                let (fx, fy) = (x as f32, y as f32);
                let (bx, by) = (b(f64::from(fx), 24), b(f64::from(fy), 24));
                assert_eq!(bx.add(&by).to_f64() as f32, fx + fy);
                assert_eq!(bx.mul(&by).to_f64() as f32, fx * fy);
                assert_eq!(bx.div(&by).to_f64() as f32, fx / fy);
                assert_eq!(bx.sub(&by).to_f64() as f32, fx - fy);
                let (bx, by) = (b(x, 53), b(y, 53));
                assert_eq!(bx.mul(&by).to_f64(), x * y, "{x} * {y}");
                assert_eq!(bx.add(&by).to_f64(), x + y, "{x} + {y}");
            }
        }
        assert_eq!(b(1.0, 24).div(&b(3.0, 24)).mantissa_bits(), 24);
    }

    #[test]
    fn precision_follows_the_more_precise_operand() {
        let third = b(1.0, 300).div(&b(3.0, 300));
        assert_eq!(third.mantissa_bits(), 300);
        assert_eq!(third.to_exact().mantissa_bits(), 300);
        let third_mixed = BigReal::from_f64(1.0).div(&b(3.0, 300));
        assert_eq!(third_mixed, third);
        // 1/3 · 3 at 300 bits is within one ulp of 1.
        let one = third.mul(&b(3.0, 300)).sub(&b(1.0, 300)).abs();
        assert!(one.log2_abs() <= -299.0, "{}", one.log2_abs());
    }

    #[test]
    fn rounding_carries_into_the_exponent() {
        // 1 − 2^-70 rounded to 64 bits is 1.
        let x = b(1.0, 128).sub(&BigReal::from_exact(&ExactFloat::from_parts(false, vec![1], -70)).with_bits(128));
        assert_eq!(x.with_bits(64).to_f64(), 1.0);
        assert_eq!(x.with_bits(60).to_exact(), 1.0f64.to_exact());
        assert!(x.with_bits(70).to_exact() != 1.0f64.to_exact());
        // Rounding drops the zeroed low words: a 128-bit value at 64 bits keeps one word.
        assert_eq!(x.with_bits(64).as_bigfloat().as_raw_parts().map(|p| p.0.len()), Some(1));
        assert_eq!(x.with_bits(100).as_bigfloat().as_raw_parts().map(|p| p.0.len()), Some(2));
    }

    #[test]
    fn exp_is_consistent_across_precisions() {
        // Correct rounding: exp at p bits equals exp at 4p bits rounded to p (p multiple of 64).
        for (i, x) in [-0.7371, 1.5, -300.25, 1e4 + 0.125, -1e6 + 1.0 / 7.0].iter().enumerate() {
            for p in [64u64, 128, 1024] {
                let lo = b(*x, p).exp();
                let hi = b(*x, 4 * p).exp().with_bits(p);
                assert_eq!(lo, hi, "case {i}: exp({x}) at {p} bits");
            }
        }
        assert_eq!(b(0.0, 100).exp(), b(1.0, 100));
        assert!((b(1.0, 200).exp().to_f64() - std::f64::consts::E).abs() < 1e-15);
        assert!(b(-1e6, 128).exp().is_finite() && !b(-1e6, 128).exp().is_zero());
    }
}
