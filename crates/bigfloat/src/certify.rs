//! Deciding whether a token decodes under the *faithful* `p`-bit evaluation of an interpolating FFN
//! without running its `O(K)` sum: a rigorous enclosure of the faithful result that replays exactly only
//! the few units whose rounding can matter, and the faithful sum only for the tokens the enclosure cannot
//! decide.
//!
//! ## What is enclosed
//!
//! The FFN is `y = b_2 + Σ_j c_j ReLU(s − s_j)` (`W_1 = 1 wᵀ`, `s = wᵀt`, thresholds `s_j = −b_1j`), with
//! the thresholds ascending in unit order (as the memorizer's interpolation builds them), so the units a
//! token activates are the prefix `j < k`. The faithful evaluation (the backend's
//! [`crate::FfnEvaluation::Faithful`]) computes, with every operation correctly rounded to `p` bits
//! (`u = 2⁻ᵖ`),
//!
//! `ĥ_j = fl(s − s_j)`, `t̂_j = fl(c_j ĥ_j)`, `acc_j = fl(acc_{j−1} + t̂_j)`, `y = fl(acc_{k−1} + b_2)`,
//! `out = fl(t + y)`
//!
//! (one row of the output; `t` is the FFN's residual input; `s` itself is computed faithfully).
//!
//! ## The walk
//!
//! An interval `[lo, hi]` of `p`-bit values is carried along the units `0..k`, always containing the
//! faithful `acc_j`:
//!
//! * A **steep** unit — one whose coefficient or neighbouring slopes, times the span of the thresholds, can
//!   reach `2^{p−100}` — is replayed exactly on both ends: `fl(lo + t̂_j)` and `fl(hi + t̂_j)` with the
//!   faithful `t̂_j`. Rounding to nearest is monotone, so the faithful `fl(acc_{j−1} + t̂_j)` stays inside.
//! * A **run** of other units `a..b` is added as its exact sum `L` widened by a rigorous bound of what the
//!   faithful recursive sum can deviate from it. With the run's exact terms `t_j = c_j (s − s_j)`, exact
//!   partial sums `L_j = Σ_{a≤i≤j} t_i`, `T = Σ |t_j|`, `S = Σ |L_j|` and the incoming `|x| ≤ max(|lo|, |hi|)`,
//!   the running-error analysis of recursive summation (Higham, *Accuracy and Stability of Numerical
//!   Algorithms*, §4.2, in the model `fl(x) = x/(1 + δ)`, `|δ| ≤ u`) gives
//!   `E = |acc_{b−1} − (x + L_{b−1})| ≤ (2u + u²)T + u·Σ|acc_j|`; with `|acc_j| ≤ |x| + |L_j| + E` this
//!   solves to `E ≤ u(1 + u/2)/(1 − (b − a)u)·(2T + S + (b − a)|x|) ≤ u(1 + 2⁻¹⁹)(2T + S + (b − a)|x|)`
//!   when `k·u ≤ 2⁻²⁰` (the code uses the factor `1 + 2⁻¹⁸`). The new ends are rounded outwards to `p`
//!   bits (a lower bound rounded down stays a lower bound).
//! * The final `fl(acc + b_2)` and `fl(t + y)` are applied to both ends (monotone again).
//!
//! Everything a run needs is affine in `s` beyond its last threshold, so it is precomputed once per
//! precision with exact prefix sums restarted at each run's first unit, and evaluated per token in a few
//! operations: `P_j = Σ_{a≤i≤j} c_i` and `D_j = L_j(s_j)`, so `L_j(s) = D_j + P_j (s − s_j)`;
//! `|L_j(s)| ≤ |D_j| + |P_j| (s − s_j)`, hence with `w_j = 2|c_j| + |P_j|`:
//! `2T + S ≤ Σ |D_j| + V_{b−1} + (Σ w_j)(s − s_{b−1})` where `V_j = Σ_{a≤i≤j} w_i (s_j − s_i)` obeys
//! `V_j = V_{j−1} + (Σ_{a≤i<j} w_i)(s_j − s_{j−1})` — sums of non-negative terms, bounded above with upward
//! rounding. `P_j` and `D_j` are built exactly (MPFR with as many bits as each exact sum or product needs)
//! and kept as intervals 160 bits finer than the magnitude they can reach; the per-token sums are evaluated
//! in interval arithmetic with directed rounding.
//!
//! The memorizer's coefficients span thousands of binary orders of magnitude, and only a handful of units
//! lie within 100 bits of the steepest (12 of 2 400 for the Measured policy at N = 300), so a token costs a
//! few dozen `p`-bit operations instead of `2k·d`, at every precision — including the fewest bits, where
//! every token's output is within a few bits of deciding.
//!
//! ## The decision
//!
//! A token *decodes* when `|fl(out_r − y_r)| < ½` for every output row `r` ([`boltz_core::decodes`]).
//! `fl(out − y)` is monotone in `out`, so if both ends of every row's enclosure decode (computed exactly as
//! the rule computes), the faithful output decodes; if one row's enclosure lies wholly at or beyond ½ on
//! one side, it does not. Anything else is *undecided*, and the caller runs the faithful sum for that
//! token. The verdict is therefore the faithful evaluation's — `tests/certified_decoding.rs` checks it
//! against the faithful forward at every precision of a range, and this module's tests the enclosure
//! against faithful outputs (they fail when its error bound is shrunk 2¹²-fold).
//!
//! The bounds assume no underflow or overflow in the faithful operations: they are only built when every
//! threshold, coefficient and bias has a binary exponent within ±2²⁶ (MPFR's range is ±2³⁰), and a token
//! whose `s` lies outside it is left undecided.

use rug::float::Round;
use rug::Float;

use boltz_core::Real;

use crate::real::{shortened, BigReal};

/// Bits of the upward-rounded bounds (and the least precision of interval end points).
const IV_BITS: u32 = 128;

/// Exponents (binary) of the FFN's parameters and of `s` the bounds accept: far inside MPFR's ±2³⁰, so no
/// faithful operation of a certified token can overflow or underflow.
const EXPONENT_LIMIT: i32 = 1 << 26;

/// A unit is *steep* at precision `p` when its terms or the partial sums around it can reach `2^{p−100}`:
/// its rounding errors may then matter, so the walk replays it exactly instead of bounding it.
const STEEP_MARGIN: f64 = 100.0;

/// Extra bits of the interval centres beyond the magnitude they can reach (their absolute width stays
/// near `2^-160`, far below any decoding margin the walk can resolve).
const CENTRE_EXTRA_BITS: i64 = 160;

/// A closed interval `[lo, hi]`, operations rounded outwards to a given precision.
#[derive(Clone, Debug)]
struct Interval {
    lo: Float,
    hi: Float,
}

impl Interval {
    fn of(x: &Float, prec: u32) -> Self {
        Self { lo: Float::with_val_round(prec, x, Round::Down).0, hi: Float::with_val_round(prec, x, Round::Up).0 }
    }

    /// `a − b` for exact `a`, `b`.
    fn difference(a: &Float, b: &Float, prec: u32) -> Self {
        Self { lo: Float::with_val_round(prec, a - b, Round::Down).0, hi: Float::with_val_round(prec, a - b, Round::Up).0 }
    }

    fn add(&self, o: &Self, prec: u32) -> Self {
        Self {
            lo: Float::with_val_round(prec, &self.lo + &o.lo, Round::Down).0,
            hi: Float::with_val_round(prec, &self.hi + &o.hi, Round::Up).0,
        }
    }

    fn mul(&self, o: &Self, prec: u32) -> Self {
        let ends = [(&self.lo, &o.lo), (&self.lo, &o.hi), (&self.hi, &o.lo), (&self.hi, &o.hi)];
        let lo = ends.iter().map(|(a, b)| Float::with_val_round(prec, *a * *b, Round::Down).0).fold(None, min_of);
        let hi = ends.iter().map(|(a, b)| Float::with_val_round(prec, *a * *b, Round::Up).0).fold(None, max_of);
        Self { lo: lo.unwrap_or_else(|| Float::new(prec)), hi: hi.unwrap_or_else(|| Float::new(prec)) }
    }
}

fn min_of(acc: Option<Float>, x: Float) -> Option<Float> {
    Some(match acc {
        Some(a) if a <= x => a,
        _ => x,
    })
}

fn max_of(acc: Option<Float>, x: Float) -> Option<Float> {
    Some(match acc {
        Some(a) if a >= x => a,
        _ => x,
    })
}

/// `a + b` rounded upwards (for bounds of non-negative sums).
fn add_up(a: &Float, b: &Float) -> Float {
    Float::with_val_round(IV_BITS, a + b, Round::Up).0
}

/// `a · b` rounded upwards (for bounds; `a`, `b` ≥ 0).
fn mul_up(a: &Float, b: &Float) -> Float {
    Float::with_val_round(IV_BITS, a * b, Round::Up).0
}

/// `|x|` rounded upwards.
fn abs_up(x: &Float) -> Float {
    Float::with_val_round(IV_BITS, x.abs_ref(), Round::Up).0
}

/// The exact sum `a + b` (an MPFR value with as many bits as it needs; `None` beyond 2³⁰ bits, which
/// values within [`EXPONENT_LIMIT`] never need).
fn exact_sum(a: &Float, b: &Float) -> Option<Float> {
    if a.is_zero() {
        return Some(b.clone());
    }
    if b.is_zero() {
        return Some(a.clone());
    }
    let (ea, eb) = (i64::from(a.get_exp().unwrap_or(0)), i64::from(b.get_exp().unwrap_or(0)));
    let lsb = (ea - i64::from(a.prec())).min(eb - i64::from(b.prec()));
    let prec = u32::try_from((ea.max(eb) + 1 - lsb).max(1)).ok().filter(|p| *p <= 1 << 30)?;
    Some(shortened(Float::with_val(prec, a + b)))
}

/// The exact difference `a − b`.
fn exact_difference(a: &Float, b: &Float) -> Option<Float> {
    exact_sum(a, &Float::with_val(b.prec(), -b))
}

/// The exact product `a · b` (`None` beyond 2³⁰ bits).
fn exact_product(a: &Float, b: &Float) -> Option<Float> {
    let prec = a.prec().checked_add(b.prec()).filter(|p| *p <= 1 << 30)?;
    Some(shortened(Float::with_val(prec, a * b)))
}

fn exponent_ok(x: &Float) -> bool {
    x.is_zero() || x.get_exp().is_some_and(|e| e.abs() < EXPONENT_LIMIT)
}

/// Binary exponent of `x` (`|x| < 2^e`), `i64::MIN / 4` for zero.
fn exponent(x: &Float) -> i64 {
    x.get_exp().map_or(i64::MIN / 4, i64::from)
}

/// What the walk says about one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The faithful evaluation decodes this token.
    Decodes,
    /// It does not.
    Fails,
    /// The enclosure is too wide to tell: evaluate faithfully.
    Undecided,
}

/// Per-precision data of the walk over one thresholds FFN (module docs). Per unit `j` and row `r`
/// (index `j·rows + r`), for a non-steep unit: the data of its segment from the segment's first unit
/// through `j`.
#[derive(Clone, Debug)]
pub(crate) struct ThresholdBounds {
    bits: u64,
    rows: usize,
    /// `s_j`.
    thresholds: Vec<Float>,
    steep: Vec<bool>,
    /// The first steep unit at or after `j` (the unit count if none).
    next_steep: Vec<usize>,
    /// `Σ_{a≤i≤j} c_i` (segment-local slope).
    slope: Vec<Interval>,
    /// `Σ_{a≤i≤j} c_i (s_j − s_i)` (the segment's partial sum at `s = s_j`).
    base: Vec<Interval>,
    /// Upper bound of `Σ_{a≤i≤j} |base_i| + V_j` (see the module docs).
    bound_base: Vec<Float>,
    /// Upper bound of `Σ_{a≤i≤j} w_i`.
    bound_slope: Vec<Float>,
}

impl ThresholdBounds {
    /// The walk's data for thresholds `s_j` (ascending in unit order, `p`-bit values), coefficient columns
    /// `c_j` (one per unit, `d` rows) and bias `b2`, or `None` when the walk does not apply (thresholds not
    /// ascending in unit order, parameters outside the exponent limit, or an exact sum beyond 2³⁰ bits).
    pub(crate) fn new(bits: u64, thresholds: &[&BigReal], columns: &[Vec<BigReal>], b2: &[BigReal]) -> Option<Self> {
        let rows = b2.len();
        let units = thresholds.len();
        if units != columns.len() || columns.iter().any(|c| c.len() != rows) || thresholds.windows(2).any(|w| w[0] > w[1]) {
            return None;
        }
        let all = thresholds.iter().copied().chain(columns.iter().flatten()).chain(b2);
        if !all.into_iter().all(|x| x.as_float().is_finite() && exponent_ok(x.as_float())) {
            return None;
        }
        let s: Vec<Float> = thresholds.iter().map(|x| x.as_float().clone()).collect();
        let span_bits = match (s.first(), s.last()) {
            (Some(a), Some(b)) => exponent(&exact_sum(&exact_difference(b, a)?, &Float::with_val(2, 1))?),
            _ => 0,
        };
        // Steep units: 2|c_j| + |slope before j| + |slope after j| (global slopes) can reach 2^{p−100}
        // over the span.
        let mut steep = vec![false; units];
        let mut slope_before = vec![Float::new(1); rows];
        for j in 0..units {
            for (r, before) in slope_before.iter_mut().enumerate() {
                let c = columns[j][r].as_float();
                let after = exact_sum(before, c)?;
                let e = (exponent(c) + 1).max(exponent(before)).max(exponent(&after)) + 1;
                if (e + span_bits) as f64 >= bits as f64 - STEEP_MARGIN {
                    steep[j] = true;
                }
                *before = after;
            }
        }
        let mut next_steep = vec![units; units];
        for j in (0..units).rev() {
            next_steep[j] = if steep[j] { j } else { next_steep.get(j + 1).copied().unwrap_or(units) };
        }
        let zero = Float::new(IV_BITS);
        let empty = Interval { lo: zero.clone(), hi: zero.clone() };
        let mut slope = Vec::with_capacity(units * rows);
        let mut base = Vec::with_capacity(units * rows);
        let mut bound_base = Vec::with_capacity(units * rows);
        let mut bound_slope = Vec::with_capacity(units * rows);
        // Running segment values per row: local slope P and partial sum D at s_j exact; G = Σ|D_i|,
        // W = Σ w_i and V rounded upwards.
        let mut p = vec![Float::new(1); rows];
        let mut d = vec![Float::new(1); rows];
        let (mut g, mut w, mut v) = (vec![zero.clone(); rows], vec![zero.clone(); rows], vec![zero.clone(); rows]);
        for j in 0..units {
            if steep[j] {
                for _ in 0..rows {
                    slope.push(empty.clone());
                    base.push(empty.clone());
                    bound_base.push(zero.clone());
                    bound_slope.push(zero.clone());
                }
                continue;
            }
            let starts = j == 0 || steep[j - 1];
            let step = match starts {
                true => None,
                false => Some(exact_difference(&s[j], &s[j - 1])?),
            };
            for r in 0..rows {
                if starts {
                    (p[r], d[r]) = (Float::new(1), Float::new(1));
                    (g[r], w[r], v[r]) = (zero.clone(), zero.clone(), zero.clone());
                }
                if let Some(step) = &step {
                    // D_j = D_{j−1} + P_{j−1} (s_j − s_{j−1});  V_j = V_{j−1} + W_{j−1} (s_j − s_{j−1})
                    // (P and W still hold the sums through unit j − 1 here).
                    d[r] = exact_sum(&d[r], &exact_product(&p[r], step)?)?;
                    v[r] = add_up(&v[r], &mul_up(&w[r], &abs_up(step)));
                }
                let c = columns[j][r].as_float();
                p[r] = exact_sum(&p[r], c)?;
                g[r] = add_up(&g[r], &abs_up(&d[r]));
                let wj = add_up(&mul_up(&Float::with_val(IV_BITS, 2), &abs_up(c)), &abs_up(&p[r]));
                w[r] = add_up(&w[r], &wj);
                let reach = exponent(&d[r]).max(exponent(&p[r]) + span_bits);
                let prec = (reach + CENTRE_EXTRA_BITS).clamp(i64::from(IV_BITS), i64::from(u32::MAX >> 4)) as u32;
                slope.push(Interval::of(&p[r], prec));
                base.push(Interval::of(&d[r], prec));
                bound_base.push(add_up(&g[r], &v[r]));
                bound_slope.push(w[r].clone());
            }
        }
        Some(Self { bits, rows, thresholds: s, steep, next_steep, slope, base, bound_base, bound_slope })
    }

    /// Units the walk replays exactly at this precision.
    #[cfg(test)]
    fn steep_units(&self) -> usize {
        self.steep.iter().filter(|x| **x).count()
    }

    /// The faithful output of a token, enclosed: per row `(lo, hi)`, `p`-bit values with
    /// `lo ≤ out_r ≤ hi` — for FFN input projection `s` (computed faithfully) with `k` active units,
    /// coefficient `columns` (as given to [`Self::new`]), residual input `t` (the FFN's input token) and
    /// bias `b2`. `None` where the analysis does not apply (no active unit, `p < 40`, `k·2⁻ᵖ > 2⁻²⁰`, `s`
    /// out of range).
    ///
    /// The walk keeps an interval `[lo, hi]` of `p`-bit values around the faithful partial sum: a steep
    /// unit is replayed exactly on both ends (`fl(x + t̂_j)` is monotone in `x`, and `t̂_j` is the faithful
    /// term), a run of other units is added as its exact sum widened by its running-error bound, and the
    /// final `fl(acc + b_2)`, `fl(t + y)` are applied to both ends (monotone again).
    fn enclose(&self, s: &BigReal, k: usize, columns: &[Vec<BigReal>], t: &[BigReal], b2: &[BigReal]) -> Option<Vec<(Float, Float)>> {
        let bits = self.bits;
        if k == 0 || k > self.thresholds.len() || bits < 40 || (k as f64).log2() + 20.0 > bits as f64 || !exponent_ok(s.as_float()) {
            return None;
        }
        let prec = u32::try_from(bits).ok()?;
        let s = s.as_float();
        let slack = Float::with_val(IV_BITS, 1) + Float::with_val(IV_BITS, Float::i_exp(1, -18));
        let (mut lo, mut hi) = (vec![Float::new(prec); self.rows], vec![Float::new(prec); self.rows]);
        let mut j = 0;
        while j < k {
            if self.steep[j] {
                let h = Float::with_val(prec, s - &self.thresholds[j]);
                for (r, (l, u)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let c = columns[j][r].as_float();
                    if c.is_zero() {
                        continue;
                    }
                    let term = Float::with_val(prec, c * &h);
                    *l = Float::with_val(prec, &*l + &term);
                    *u = Float::with_val(prec, &*u + &term);
                }
                j += 1;
                continue;
            }
            // The run of units j..b (all active, none steep): exact sum L = base + slope·(s − s_{b−1}),
            // error ≤ u(1 + 2^-19)(2T + S + m·|x|) with |x| the incoming partial sum (here 1 + 2^-18).
            let b = self.next_steep[j].min(k);
            let last = b - 1;
            let m = Float::with_val(IV_BITS, (b - j) as f64);
            for r in 0..self.rows {
                let i = last * self.rows + r;
                let centre_prec = self.slope[i].lo.prec().max(self.base[i].lo.prec()) + 64;
                let diff = Interval::difference(s, &self.thresholds[last], centre_prec);
                let sum = self.base[i].add(&self.slope[i].mul(&diff, centre_prec), centre_prec);
                let (x_lo, x_hi) = (abs_up(&lo[r]), abs_up(&hi[r]));
                let x = if x_lo > x_hi { x_lo } else { x_hi };
                let bound = add_up(&add_up(&self.bound_base[i], &mul_up(&self.bound_slope[i], &abs_up(&diff.hi))), &mul_up(&m, &x));
                let error = mul_up(&slack, &(bound >> (bits as i32)));
                let down = Float::with_val_round(prec, &lo[r] + &sum.lo, Round::Down).0;
                lo[r] = Float::with_val_round(prec, &down - &error, Round::Down).0;
                let up = Float::with_val_round(prec, &hi[r] + &sum.hi, Round::Up).0;
                hi[r] = Float::with_val_round(prec, &up + &error, Round::Up).0;
            }
            j = b;
        }
        let out = |acc: &Float, r: usize| {
            let y = Float::with_val(prec, acc + b2[r].as_float());
            Float::with_val(prec, t[r].as_float() + &y)
        };
        Some((0..self.rows).map(|r| (out(&lo[r], r), out(&hi[r], r))).collect())
    }

    /// The verdict for a token (arguments as for [`Self::enclose`]) with target `y`: both ends of every
    /// row's enclosure decode ([`boltz_core::decodes`]'s rule: `|fl(out − y)| < ½`, computed as it is) —
    /// then so does the faithful output, `fl(out − y)` being monotone in `out` — or one row's
    /// enclosure lies wholly on one side at or beyond ½.
    pub(crate) fn decide(&self, s: &BigReal, k: usize, columns: &[Vec<BigReal>], t: &[BigReal], b2: &[BigReal], y: &[BigReal]) -> Verdict {
        if y.len() != self.rows {
            return Verdict::Undecided;
        }
        let Some(rows) = self.enclose(s, k, columns, t, b2) else { return Verdict::Undecided };
        let half = BigReal::from_f64(0.5);
        let mut all_decode = true;
        for ((lo, hi), target) in rows.into_iter().zip(y) {
            let (lo, hi) = (BigReal::new(lo, self.bits), BigReal::new(hi, self.bits));
            let (below, above) = (lo.sub(target), hi.sub(target));
            if below >= half || above <= half.neg() {
                return Verdict::Fails;
            }
            if !(below.abs() < half && above.abs() < half) {
                all_decode = false;
            }
        }
        if all_decode {
            Verdict::Decodes
        } else {
            Verdict::Undecided
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltz_core::Real;

    /// A deterministic generator (xorshift) for the synthetic interpolations.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// An interpolation like the memorizer's at `bits`: ascending points with gaps `2^-e` (`e` spread over
    /// a wide range, as near-collisions of context ids are), integer targets per row, coefficients
    /// `c_j = slope_j − slope_{j−1}` computed at `bits`.
    fn interpolation(rng: &mut Rng, points: usize, rows: usize, bits: u64) -> (Vec<BigReal>, Vec<Vec<BigReal>>, Vec<Vec<BigReal>>) {
        let mut s = vec![BigReal::from_f64_with_bits(-1.0, bits)];
        for _ in 1..points {
            let gap = BigReal::new(Float::with_val(64, Float::i_exp(1, -(rng.below(bits / 2) as i32))), bits);
            let next = s[s.len() - 1].add(&gap);
            s.push(next);
        }
        let y: Vec<Vec<BigReal>> =
            (0..points).map(|_| (0..rows).map(|_| BigReal::from_f64_with_bits(rng.below(4) as f64, bits)).collect()).collect();
        let zero = BigReal::zero(bits);
        let mut previous = vec![zero.clone(); rows];
        let mut columns = Vec::with_capacity(points);
        for j in 0..points {
            let slope: Vec<BigReal> = match j + 1 < points {
                true => (0..rows).map(|r| y[j + 1][r].sub(&y[j][r]).div(&s[j + 1].sub(&s[j]))).collect(),
                false => vec![zero.clone(); rows],
            };
            columns.push(slope.iter().zip(&previous).map(|(a, b)| a.sub(b)).collect());
            previous = slope;
        }
        (s, columns, y)
    }

    /// The backend's faithful evaluation of `t + b2 + Σ_{j<k} c_j (s − s_j)`, operation by operation.
    fn faithful(s: &BigReal, thresholds: &[BigReal], columns: &[Vec<BigReal>], t: &[BigReal], b2: &[BigReal]) -> Vec<BigReal> {
        let bits = s.bits();
        let k = thresholds.partition_point(|th| th < s);
        let mut acc = vec![BigReal::zero(bits); b2.len()];
        let (mut h, mut scratch) = (BigReal::zero(bits), Float::new(1));
        for j in 0..k {
            h.assign_sum(s, &thresholds[j].neg());
            for (a, c) in acc.iter_mut().zip(&columns[j]) {
                if !c.is_zero() {
                    a.add_product(c, &h, &mut scratch);
                }
            }
        }
        acc.iter().zip(b2).zip(t).map(|((a, b), ti)| ti.add(&a.add(b))).collect()
    }

    /// Every faithful output lies in its enclosure, for tokens near every point (perturbed like an
    /// attention error would) and between points, at several precisions — with steep units replayed and
    /// without — and the enclosures are narrow (the faithful output to about 2⁻⁶⁰, where decoding is decided at ½).
    #[test]
    fn faithful_outputs_lie_in_their_enclosures() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut rows_seen, mut narrow, mut steep_seen) = (0, 0, 0);
        for bits in [64u64, 100, 200, 400, 1000] {
            let (s, columns, y) = interpolation(&mut rng, 120, 3, 1000);
            let s: Vec<BigReal> = s.iter().map(|x| x.with_bits(bits)).collect();
            let columns: Vec<Vec<BigReal>> = columns.iter().map(|c| c.iter().map(|x| x.with_bits(bits)).collect()).collect();
            let b2: Vec<BigReal> = y[0].iter().map(|x| x.with_bits(bits)).collect();
            let refs: Vec<&BigReal> = s.iter().collect();
            let Some(bounds) = ThresholdBounds::new(bits, &refs, &columns, &b2) else {
                // Rounding to few bits can merge points out of order; nothing to check then.
                assert!(s.windows(2).any(|w| w[0] > w[1]), "{bits} bits: ascending thresholds in range need bounds");
                continue;
            };
            steep_seen += bounds.steep_units();
            for m in 0..s.len() {
                for shift in [None, Some(bits as i32 - 8), Some(bits as i32 - 2), Some(bits as i32 + 3)] {
                    let token = match shift {
                        None => s[m].clone(),
                        Some(e) => {
                            let delta = BigReal::new(Float::with_val(64, Float::i_exp(1, -e)), bits);
                            if rng.below(2) == 0 {
                                s[m].add(&delta)
                            } else {
                                s[m].sub(&delta)
                            }
                        }
                    };
                    let t: Vec<BigReal> = (0..3).map(|_| BigReal::from_f64_with_bits(rng.below(3) as f64 - 1.0, bits)).collect();
                    let out = faithful(&token, &s, &columns, &t, &b2);
                    let k = s.partition_point(|th| *th < token);
                    let Some(ends) = bounds.enclose(&token, k, &columns, &t, &b2) else {
                        assert!(k == 0, "{bits} bits, k = {k}: the enclosure should apply");
                        continue;
                    };
                    for ((lo, hi), o) in ends.iter().zip(&out) {
                        let o = o.as_float();
                        assert!(*lo <= *o && *o <= *hi, "{bits} bits, point {m}: {o} outside [{lo}, {hi}]");
                        rows_seen += 1;
                        let width = Float::with_val(IV_BITS, hi - lo);
                        narrow += usize::from(width <= Float::with_val(IV_BITS, Float::i_exp(1, -60)));
                    }
                }
            }
        }
        assert!(steep_seen > 0, "no precision had steep units to replay");
        assert!(narrow * 100 >= rows_seen * 99, "only {narrow} of {rows_seen} enclosures were narrower than 2^-60");
    }

    /// Thresholds out of order (the faithful sum would not run over a prefix) get no enclosure.
    #[test]
    fn descending_thresholds_get_no_bounds() {
        let bits = 64;
        let s: Vec<BigReal> = [0.5, 0.25].iter().map(|x| BigReal::from_f64_with_bits(*x, bits)).collect();
        let columns = vec![vec![BigReal::from_f64_with_bits(1.0, bits)]; 2];
        let refs: Vec<&BigReal> = s.iter().collect();
        assert!(ThresholdBounds::new(bits, &refs, &columns, &[BigReal::zero(bits)]).is_none());
    }
}
