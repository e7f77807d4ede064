//! Exact ReLU gadgets for the deep constructions (`docs/theory.md` §9.3, §9.5): FFN blocks
//! assembled from sparse hidden units, and the dyadic constants they use. Every weight is an exact binary
//! value, so a [`BigReal`] model stores it without rounding.

use boltz_bigfloat::BigReal;
use boltz_core::{ExactConvert, ExactFloat, FeedForward, Matrix, Real, Weight};

/// The working precision of build-time arithmetic: exact for the dyadic sums and products of f64 tokens
/// and the constructions' weights (their exponents span far less than this).
pub(crate) const WORK_BITS: u64 = 4096;

/// The integer `v`, exactly.
pub(crate) fn int(v: i128) -> BigReal {
    let m = v.unsigned_abs();
    BigReal::from_exact(&ExactFloat::from_parts(v < 0, vec![m as u64, (m >> 64) as u64], 0))
}

/// `2^p`, exactly (any integer p).
pub(crate) fn pow2(p: i64) -> BigReal {
    BigReal::from_exact(&ExactFloat::from_parts(false, vec![1], p))
}

/// `x` stored at its own mantissa length (at least 53 bits), whatever precision computed it.
pub(crate) fn tidy(x: &BigReal) -> BigReal {
    BigReal::from_exact(&x.to_exact())
}

/// `x` at the working precision, for exact build-time arithmetic.
pub(crate) fn work(x: &BigReal) -> BigReal {
    x.with_bits(WORK_BITS)
}

/// `(⌊y⌋, y − ⌊y⌋)` of an exactly represented `y` with `|⌊y⌋| < 2^100`; the fraction is exact.
pub(crate) fn floor_frac(y: &BigReal) -> (i128, BigReal) {
    let y = work(y);
    let mut fl = y.to_f64().floor() as i128;
    loop {
        let f = y.sub(&int(fl));
        if f.to_exact().is_negative() {
            fl -= ((-f.to_f64()).ceil() as i128).max(1);
        } else if !f.sub(&int(1)).to_exact().is_negative() {
            fl += (f.to_f64().floor() as i128).max(1);
        } else {
            return (fl, f);
        }
    }
}

/// One hidden unit of an FFN block: `ReLU(Σ reads·z + bias)` added to the rows of `writes` with their
/// weights.
#[derive(Clone, Debug)]
pub(crate) struct Unit {
    /// Non-zero entries of the unit's `W1` row: (row of the residual stream, weight).
    pub reads: Vec<(usize, BigReal)>,
    /// The unit's `b1`.
    pub bias: BigReal,
    /// Non-zero entries of the unit's `W2` column.
    pub writes: Vec<(usize, BigReal)>,
}

impl Unit {
    pub(crate) fn new(reads: Vec<(usize, BigReal)>, bias: BigReal, writes: Vec<(usize, BigReal)>) -> Self {
        Self { reads, bias, writes }
    }

    /// `ReLU(z_row + bias)` into `writes`.
    pub(crate) fn of_row(row: usize, bias: BigReal, writes: Vec<(usize, BigReal)>) -> Self {
        Self::new(vec![(row, int(1))], bias, writes)
    }

    /// The threshold pair `1[z_row ≥ t] = (ReLU(z_row − t + γ) − ReLU(z_row − t))/γ` for values of
    /// `z_row` never inside `(t − γ, t)`, each added with `weight` to its row (`docs/theory.md` §9.3, §9.5: with
    /// `γ = 1` the integer step).
    pub(crate) fn step(row: usize, t: &BigReal, gamma: &BigReal, writes: &[(usize, BigReal)]) -> [Self; 2] {
        // Exact: t − γ spans log₂(t/γ) bits.
        let bits = WORK_BITS.max((t.log2_abs() - gamma.log2_abs()).max(0.0) as u64 + 64);
        let inv = tidy(&int(1).with_bits(bits).div(gamma));
        let scaled = |sign: bool| writes.iter().map(|(r, w)| (*r, tidy(&w.with_bits(bits).mul(&inv)).neg_if(sign))).collect::<Vec<_>>();
        [
            Self::of_row(row, tidy(&gamma.with_bits(bits).sub(t)), scaled(false)),
            Self::of_row(row, tidy(&t.with_bits(bits).neg()), scaled(true)),
        ]
    }
}

/// Negation on a flag.
trait NegIf {
    fn neg_if(self, negate: bool) -> Self;
}

impl NegIf for BigReal {
    fn neg_if(self, negate: bool) -> Self {
        if negate {
            Real::neg(&self)
        } else {
            self
        }
    }
}

/// The FFN block of `units` at model width `width`, with output bias `b2` (sparse). An empty unit list
/// becomes one all-zero unit (a block has at least one).
pub(crate) fn ffn(width: usize, mut units: Vec<Unit>, b2: &[(usize, BigReal)]) -> FeedForward<BigReal> {
    if units.is_empty() {
        units.push(Unit::new(Vec::new(), int(0), Vec::new()));
    }
    let zero = int(0);
    let dense = |entries: &[(usize, BigReal)]| {
        let mut v = vec![zero.clone(); width];
        for (r, w) in entries {
            v[*r] = v[*r].add(w);
        }
        v
    };
    let rows: Vec<Vec<BigReal>> = units.iter().map(|u| dense(&u.reads)).collect();
    let cols: Vec<Vec<BigReal>> = units.iter().map(|u| dense(&u.writes)).collect();
    let q = units.len();
    FeedForward {
        w1: Weight::Dense(Matrix::from_fn(q, width, |u, r| rows[u][r].clone())),
        b1: units.iter().map(|u| u.bias.clone()).collect(),
        w2: Weight::Dense(Matrix::from_fn(width, q, |r, u| cols[u][r].clone())),
        b2: dense(b2),
    }
}

/// Non-zero parameters of a model (weights and biases): the count the papers' additive
/// `Õ(d + n + √(nN))` bounds refer to (`docs/theory.md` §9.9).
pub fn nonzero_params(model: &boltz_core::Model<BigReal>) -> u64 {
    let nz = |v: &[BigReal]| v.iter().filter(|x| !x.is_zero()).count() as u64;
    let weight = |w: &Weight<BigReal>| nz(w.to_dense().as_slice());
    let mut count = 0;
    for (_, head) in model.stack().heads() {
        count += weight(&head.w_q) + weight(&head.w_k) + weight(&head.w_v) + weight(&head.w_o);
        count += head.b_q.as_deref().map_or(0, nz);
    }
    for (_, f) in model.stack().ffns() {
        count += weight(&f.w1) + weight(&f.w2) + nz(&f.b1) + nz(&f.b2);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltz_core::Real;

    #[test]
    fn floor_frac_is_exact_near_integers_and_for_negatives() {
        for (y, fl) in [(int(5), 5), (int(-3), -3), (pow2(-80).neg(), -1), (work(&int(7)).sub(&pow2(-200)), 6), (pow2(90), 1 << 90)] {
            let (f, frac) = floor_frac(&y);
            assert_eq!(f, fl, "{y}");
            assert!(!frac.to_exact().is_negative() && frac.sub(&int(1)).to_exact().is_negative(), "{frac}");
            assert_eq!(work(&int(f)).add(&frac).to_exact(), y.to_exact());
        }
    }

    #[test]
    fn the_step_pair_is_exact_outside_its_band() {
        let (t, gamma) = (int(8), pow2(-3));
        let units = Unit::step(0, &t, &gamma, &[(1, int(1))]);
        let eval = |z: BigReal| -> BigReal {
            units.iter().fold(int(0), |acc, u| {
                let h = work(&z).mul(&u.reads[0].1).add(&u.bias).relu();
                acc.add(&h.mul(&u.writes[0].1))
            })
        };
        assert_eq!(eval(int(8)).to_exact(), int(1).to_exact());
        assert_eq!(eval(int(9)).to_exact(), int(1).to_exact());
        assert_eq!(eval(int(8).sub(&pow2(-3))).to_exact(), int(0).to_exact());
        assert!(eval(int(0)).is_zero());
    }
}
