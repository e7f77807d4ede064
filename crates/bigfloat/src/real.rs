//! [`BigReal`]: an arbitrary-precision binary float that implements [`Real`].

use std::cmp::Ordering;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};

use boltz_core::{ExactConvert, ExactFloat, Real};
use rug::float::Round;
use rug::integer::Order;
use rug::{Assign, Float, Integer};

/// Smallest supported precision in bits.
pub const MIN_BITS: u64 = 2;
/// Largest supported precision in bits (2²⁴ ≈ 16.8 million; one `exp` takes seconds there).
pub const MAX_BITS: u64 = 1 << 24;

/// A binary floating-point number with a precision of `bits` mantissa bits, computed by GNU MPFR.
///
/// Arithmetic follows [`Real`]'s rule: a result has the precision of the more precise operand (the
/// arbitrary-precision backend therefore makes every weight, input and constant at its own precision, so
/// that every operation of a forward runs at exactly `bits` bits — checked by [`PrecisionAudit`]).
///
/// **Every operation (`+ − × ÷ exp`) is correctly rounded to `bits` bits, ties to even** — `p`-bit
/// arithmetic in the IEEE sense (with an unbounded exponent): at 24 bits it is binary32 arithmetic, at 53
/// bits binary64 arithmetic, bit for bit. MPFR rounds every result directly to the destination's
/// precision (`mpfr_add`, `mpfr_mul`, `mpfr_div`, `mpfr_exp` with `MPFR_RNDN`), so no double rounding can
/// occur at any precision.
///
/// The mantissa is *not* padded: a value that needs fewer bits (e.g. a weight `0.5` at 16 384 bits) is
/// stored with MPFR precision just large enough to hold it exactly, while it is *tagged* with `bits`; MPFR
/// multiplies by the operands' own lengths, so products with it are cheap, and every result is still rounded
/// to `bits`. The exponent range is MPFR's default (±(2³⁰ − 1) binary orders of magnitude), so `exp` of
/// attention logits up to ~7·10⁸ in magnitude neither overflows nor underflows.
#[derive(Clone)]
pub struct BigReal {
    value: Float,
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

/// `value` with its MPFR precision lowered to the fewest bits that hold it exactly (no rounding).
pub(crate) fn shortened(mut value: Float) -> Float {
    // SAFETY: `mpfr_min_prec` only reads the initialised `mpfr_t` behind `as_raw`, which outlives the call.
    let needed = unsafe { gmp_mpfr_sys::mpfr::min_prec(value.as_raw()) };
    let needed = u32::try_from(needed).unwrap_or(u32::MAX).max(1);
    if needed < value.prec() {
        // Exact: the value has `needed` significant bits.
        value.set_prec_round(needed, Round::Nearest);
    }
    value
}

impl BigReal {
    /// Every produced value passes here (cheap unless a [`PrecisionAudit`] runs).
    fn made(value: Float, bits: u32) -> Self {
        Self::note(bits);
        Self { value, bits }
    }

    /// `value` correctly rounded (ties to even) to `bits` bits, tagged with that precision.
    pub fn new(value: Float, bits: u64) -> Self {
        let bits = bits.clamp(MIN_BITS, MAX_BITS) as u32;
        let mut value = value;
        if value.prec() > bits {
            value.set_prec_round(bits, Round::Nearest);
        }
        Self::made(shortened(value), bits)
    }

    /// Zero at precision `bits`.
    pub fn zero(bits: u64) -> Self {
        Self::new(Float::new(1), bits)
    }

    /// `x` rounded to (and tagged with) precision `bits`, without passing through a 53-bit value.
    pub fn from_f64_with_bits(x: f64, bits: u64) -> Self {
        Self::new(Float::with_val(53, x), bits)
    }

    /// The exact value of `x`, tagged with precision `bits`, rounded to it.
    pub fn from_exact_with_bits(x: &ExactFloat, bits: u64) -> Self {
        Self::new(exact_to_float(x, bits), bits)
    }

    /// The precision p (bits) this value was rounded to.
    pub fn bits(&self) -> u64 {
        u64::from(self.bits)
    }

    /// This value rounded to (and tagged with) precision `bits`.
    pub fn with_bits(&self, bits: u64) -> Self {
        Self::new(self.value.clone(), bits)
    }

    /// The underlying MPFR value (its own MPFR precision may be below [`BigReal::bits`]: see the type docs).
    pub fn as_float(&self) -> &Float {
        &self.value
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.value.is_zero()
    }

    /// `log2 |x|` estimate from the exponent (for reports; `-inf` for zero).
    pub fn log2_abs(&self) -> f64 {
        if self.value.is_zero() {
            return f64::NEG_INFINITY;
        }
        if !self.value.is_finite() {
            return f64::NAN;
        }
        let (m, e) = self.value.to_f64_exp();
        f64::from(e) + m.abs().log2()
    }

    /// `self ← self + a·b` with both roundings of `self.add(&a.mul(b))` — the product to the precision of
    /// the more precise of `a`, `b`, the sum to that of the more precise of `self` and the product — bit
    /// for bit, in place: `scratch` holds the product, and neither allocates once they hold the working
    /// precision. The accumulation of every dot product and FFN sum of the backend.
    pub fn add_product(&mut self, a: &BigReal, b: &BigReal, scratch: &mut Float) {
        let product_bits = a.bits.max(b.bits);
        if scratch.prec() != product_bits {
            *scratch = Float::new(product_bits);
        }
        scratch.assign(&a.value * &b.value);
        Self::note(product_bits);
        let bits = self.bits.max(product_bits);
        if self.value.prec() < bits {
            // Exact: more bits than the value has.
            self.value.set_prec_round(bits, Round::Nearest);
        }
        self.value += &*scratch;
        self.bits = bits;
        Self::note(bits);
    }

    /// `self ← a + b` correctly rounded (exactly `a.add(b)`), reusing `self`'s storage.
    pub fn assign_sum(&mut self, a: &BigReal, b: &BigReal) {
        let bits = a.bits.max(b.bits);
        if self.value.prec() != bits {
            self.value = Float::new(bits);
        }
        self.value.assign(&a.value + &b.value);
        self.bits = bits;
        Self::note(bits);
    }

    /// Counts a value of precision `bits` for a running [`PrecisionAudit`].
    fn note(bits: u32) {
        if AUDIT_ON.load(AtomicOrdering::Relaxed) {
            AUDIT_VALUES.fetch_add(1, AtomicOrdering::Relaxed);
            AUDIT_MIN.fetch_min(u64::from(bits), AtomicOrdering::Relaxed);
            AUDIT_MAX.fetch_max(u64::from(bits), AtomicOrdering::Relaxed);
        }
    }

    /// The result of an MPFR operation evaluated into a fresh `bits`-bit destination (correctly rounded).
    fn computed<T>(bits: u32, op: T) -> Self
    where
        Float: Assign<T>,
    {
        let mut value = Float::new(bits);
        value.assign(op);
        Self::made(value, bits)
    }
}

fn exact_to_float(x: &ExactFloat, bits: u64) -> Float {
    if x.is_zero() {
        return Float::new(1);
    }
    // value = M · 2^e, M an integer of `len` bits: M rounded to `bits`, then scaled exactly.
    let mut m = Integer::from_digits(x.mantissa(), Order::Lsf);
    if x.is_negative() {
        m = -m;
    }
    let prec = x.mantissa_bits().min(bits).clamp(1, MAX_BITS) as u32;
    let mut f = Float::with_val(prec, &m);
    let e = x.exponent().clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    f <<= e;
    f
}

impl ExactConvert for BigReal {
    fn to_exact(&self) -> ExactFloat {
        match self.value.to_integer_exp() {
            Some((m, e)) if !self.value.is_zero() => {
                let negative = m.cmp0() == Ordering::Less;
                ExactFloat::from_parts(negative, m.as_abs().to_digits::<u64>(Order::Lsf), i64::from(e))
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
        self.value.is_finite()
    }

    fn add(&self, rhs: &Self) -> Self {
        Self::computed(self.bits.max(rhs.bits), &self.value + &rhs.value)
    }

    fn sub(&self, rhs: &Self) -> Self {
        Self::computed(self.bits.max(rhs.bits), &self.value - &rhs.value)
    }

    fn mul(&self, rhs: &Self) -> Self {
        Self::computed(self.bits.max(rhs.bits), &self.value * &rhs.value)
    }

    fn div(&self, rhs: &Self) -> Self {
        Self::computed(self.bits.max(rhs.bits), &self.value / &rhs.value)
    }

    /// Exact (the value keeps its own length).
    fn neg(&self) -> Self {
        Self::made(-self.value.clone(), self.bits)
    }

    /// `max(self, 0)` at this value's precision (the trait's default would return a 53-bit zero).
    fn relu(&self) -> Self {
        if self.value.is_sign_negative() || self.value.is_zero() {
            Self::zero(u64::from(self.bits))
        } else {
            self.clone()
        }
    }

    /// `|self|` at this value's precision.
    fn abs(&self) -> Self {
        if self.value.is_sign_negative() {
            self.neg()
        } else {
            self.clone()
        }
    }

    /// Correctly rounded to `bits` (MPFR's `mpfr_exp`, round to nearest): the result depends only on the
    /// argument and the precision.
    fn exp(&self) -> Self {
        Self::computed(self.bits, self.value.exp_ref())
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
        // Rounding keeps only the bits the value needs: 1 needs one bit, 1 − 2^-70 at 100 bits needs 70.
        assert_eq!(x.with_bits(64).as_float().prec(), 1);
        assert_eq!(x.with_bits(100).as_float().prec(), 70);
        assert_eq!(x.with_bits(100).bits(), 100);
    }

    #[test]
    fn in_place_accumulation_is_the_two_rounded_operations() {
        let mut scratch = Float::new(1);
        for p in [2u64, 24, 53, 77, 300] {
            let (a, c) = (b(1.0, p).div(&b(3.0, p)), b(-2.0, p).div(&b(7.0, p)));
            for start in [BigReal::zero(p), b(0.1, p), b(-1e10, p), b(1.0, p).div(&b(11.0, p))] {
                let mut acc = start.clone();
                acc.add_product(&a, &c, &mut scratch);
                let want = start.add(&a.mul(&c));
                assert_eq!((acc.to_exact(), acc.bits()), (want.to_exact(), want.bits()), "{p} bits");
                let mut h = BigReal::zero(8);
                h.assign_sum(&start, &a);
                assert_eq!((h.to_exact(), h.bits()), (start.add(&a).to_exact(), p));
            }
        }
        // Mixed precisions follow the more precise operand, as the allocating operations do.
        let (lo, hi) = (b(1.0, 24).div(&b(3.0, 24)), b(1.0, 200).div(&b(3.0, 200)));
        let mut acc = lo.clone();
        acc.add_product(&lo, &hi, &mut scratch);
        assert_eq!(acc, lo.add(&lo.mul(&hi)));
        assert_eq!(acc.bits(), 200);
    }

    #[test]
    fn the_linked_mpfr_is_thread_safe() {
        // The backend runs MPFR on rayon's threads: its flags and exponent range must be per thread.
        // SAFETY: reads a build option of the linked library.
        assert_ne!(unsafe { gmp_mpfr_sys::mpfr::buildopt_tls_p() }, 0, "MPFR built without thread-local state");
        assert!(crate::library().starts_with("GNU MPFR 4."), "{}", crate::library());
    }

    #[test]
    fn exponent_range_is_mpfrs_default() {
        // 0.1 · 2^E is finite for E in 1 − 2^30 ..= 2^30 − 1 (scripts/read_boltz.py refuses the rest).
        let pow2 = |k: i64| BigReal::from_exact(&ExactFloat::from_parts(false, vec![1], k));
        assert!(pow2((1 << 30) - 2).is_finite() && pow2(-(1 << 30)).is_finite() && !pow2(-(1 << 30)).is_zero());
        assert_eq!(pow2((1 << 30) - 2).to_exact(), ExactFloat::from_parts(false, vec![1], (1 << 30) - 2));
        assert!(!pow2((1 << 30) - 1).is_finite());
        assert!(pow2(-(1 << 30) - 1).is_zero());
        // Such a value read back is not the file's value, so the loader refuses it as inexact.
        assert_ne!(pow2((1 << 30) - 1).to_exact(), ExactFloat::from_parts(false, vec![1], (1 << 30) - 1));
    }

    #[test]
    fn exp_is_consistent_across_precisions() {
        // Correct rounding: exp at p bits equals exp at 4p bits rounded to p (at odd precisions too, where
        // a 4p-bit result rounded again could only differ on a near-midpoint, which these are not).
        for (i, x) in [-0.7371, 1.5, -300.25, 1e4 + 0.125, -1e6 + 1.0 / 7.0].iter().enumerate() {
            for p in [24u64, 53, 64, 77, 128, 1024] {
                // The same argument (rounded to p bits) at both precisions.
                let arg = b(*x, p);
                let lo = arg.exp();
                let hi = arg.with_bits(4 * p).exp().with_bits(p);
                assert_eq!(lo, hi, "case {i}: exp({x}) at {p} bits");
            }
        }
        assert_eq!(b(0.0, 100).exp(), b(1.0, 100));
        assert!((b(1.0, 200).exp().to_f64() - std::f64::consts::E).abs() < 1e-15);
        assert!(b(-1e6, 128).exp().is_finite() && !b(-1e6, 128).exp().is_zero());
    }
}
