//! Deciding whether a token decodes under the *faithful* `p`-bit evaluation of an interpolating FFN
//! without running its `O(K)` sum: a rigorous enclosure of the faithful result, and the faithful sum only
//! for the tokens the enclosure cannot decide.
//!
//! ## The enclosure
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
//! (one row of the output; `t` is the FFN's residual input). With the exact terms `t_j = c_j (s − s_j)`,
//! the exact partial sums `A_j = Σ_{i≤j} t_i`, `T = Σ_{j<k} |t_j|` and `S = Σ_{j<k} |A_j|`, the standard
//! running-error analysis of recursive summation (Higham, *Accuracy and Stability of Numerical
//! Algorithms*, §4.2, in the model `fl(x) = x/(1 + δ)`, `|δ| ≤ u`) gives
//!
//! `|acc_{k−1} − A_{k−1}| ≤ (2u + u²)·T + u·Σ_{j<k} |acc_j| ≤ u(1 + 2⁻¹⁹)·(2T + S)` when `k·u ≤ 2⁻²⁰`,
//!
//! and the two final roundings add `u·|X| + u·|A_{k−1} + b_2|` (first order; `X = t + b_2 + A_{k−1}` is the
//! exact output for the rounded weights and the computed `s`). The slack factor `1 + 2⁻¹⁸` covers every
//! second-order term when `u ≤ 2⁻²⁰`.
//!
//! Everything on the right is affine in `s` between two thresholds, so it is precomputed once per
//! precision with exact prefix sums and evaluated per token in `O(log K + d)` operations:
//!
//! * `P_k = Σ_{j<k} c_j` and `D_j = A_j(s_j)`, so `A_{k−1}(s) = D_{k−1} + P_k (s − s_{k−1})` — a short
//!   affine piece without cancellation, since `s` lies between `s_{k−1}` and `s_k`;
//! * `|A_j(s)| ≤ |D_j| + |P_{j+1}| (s − s_j)`, hence with `w_j = 2|c_j| + |P_{j+1}|`:
//!   `2T + S ≤ Σ_{j<k} |D_j| + V_k + (Σ_{j<k} w_j)(s − s_{k−1})` where `V_k = Σ_{j<k} w_j (s_{k−1} − s_j)`
//!   obeys `V_{k+1} = V_k + (Σ_{j<k} w_j)(s_k − s_{k−1})` — sums of non-negative terms, bounded above with
//!   upward rounding.
//!
//! `P_k` and `D_j` are built exactly (MPFR with as many bits as each exact sum or product needs) and kept as
//! 128-bit intervals; the per-token centre is evaluated in interval arithmetic with directed rounding.
//!
//! ## The decision
//!
//! A token *decodes* when `|fl(out_r − y_r)| < ½` for every output row `r` ([`boltz_core::decodes`]). With
//! the enclosure `|out_r − X_r| ≤ R_r`: if `|X_r − y_r| + R_r < ½(1 − 2^{2−p})` for every row, the faithful
//! result decodes (the final subtraction, correctly rounded to at least `p` bits, cannot reach ½); if
//! `|X_r − y_r| − R_r ≥ ½` for some row, it does not. Anything else is *undecided*, and the caller runs the
//! faithful sum for that token. The verdict is therefore the faithful evaluation's, bit for bit in its
//! consequence — `tests/certified_decoding.rs` checks it against the faithful forward at every precision of
//! a range, and the enclosure itself against faithful outputs.
//!
//! The bounds assume no underflow or overflow in the faithful operations: they are only built when every
//! threshold, coefficient and bias has a binary exponent within ±2²⁶ (MPFR's range is ±2³⁰), and a token
//! whose `s` lies outside it is left undecided.

use std::cmp::Ordering;

use rug::float::Round;
use rug::Float;

use crate::real::BigReal;

/// Bits of the interval end points and of the upward-rounded bounds.
const IV_BITS: u32 = 128;

/// Exponents (binary) of the FFN's parameters and of `s` the bounds accept: far inside MPFR's ±2³⁰, so no
/// faithful operation of a certified token can overflow or underflow.
const EXPONENT_LIMIT: i32 = 1 << 26;

/// A closed interval `[lo, hi]` with 128-bit end points, operations rounded outwards.
#[derive(Clone, Debug)]
struct Interval {
    lo: Float,
    hi: Float,
}

impl Interval {
    fn of(x: &Float) -> Self {
        Self { lo: Float::with_val_round(IV_BITS, x, Round::Down).0, hi: Float::with_val_round(IV_BITS, x, Round::Up).0 }
    }

    /// `a − b` for exact `a`, `b`.
    fn difference(a: &Float, b: &Float) -> Self {
        Self { lo: Float::with_val_round(IV_BITS, a - b, Round::Down).0, hi: Float::with_val_round(IV_BITS, a - b, Round::Up).0 }
    }

    fn add(&self, o: &Self) -> Self {
        Self {
            lo: Float::with_val_round(IV_BITS, &self.lo + &o.lo, Round::Down).0,
            hi: Float::with_val_round(IV_BITS, &self.hi + &o.hi, Round::Up).0,
        }
    }

    fn sub(&self, o: &Self) -> Self {
        Self {
            lo: Float::with_val_round(IV_BITS, &self.lo - &o.hi, Round::Down).0,
            hi: Float::with_val_round(IV_BITS, &self.hi - &o.lo, Round::Up).0,
        }
    }

    fn mul(&self, o: &Self) -> Self {
        let ends = [(&self.lo, &o.lo), (&self.lo, &o.hi), (&self.hi, &o.lo), (&self.hi, &o.hi)];
        let lo = ends.iter().map(|(a, b)| Float::with_val_round(IV_BITS, *a * *b, Round::Down).0).fold(None, min_of);
        let hi = ends.iter().map(|(a, b)| Float::with_val_round(IV_BITS, *a * *b, Round::Up).0).fold(None, max_of);
        Self { lo: lo.unwrap_or_else(|| Float::new(IV_BITS)), hi: hi.unwrap_or_else(|| Float::new(IV_BITS)) }
    }

    /// An upper bound of `|x|` over the interval.
    fn abs_max(&self) -> Float {
        let (a, b) = (Float::with_val(IV_BITS, self.lo.abs_ref()), Float::with_val(IV_BITS, self.hi.abs_ref()));
        if a > b {
            a
        } else {
            b
        }
    }

    /// A lower bound of `|x|` over the interval.
    fn abs_min(&self) -> Float {
        if self.lo.cmp0() == Some(Ordering::Greater) {
            self.lo.clone()
        } else if self.hi.cmp0() == Some(Ordering::Less) {
            Float::with_val(IV_BITS, -&self.hi)
        } else {
            Float::new(IV_BITS)
        }
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

/// The exact sum `a + b` (an MPFR value with as many bits as it needs).
fn exact_sum(a: &Float, b: &Float) -> Float {
    if a.is_zero() {
        return b.clone();
    }
    if b.is_zero() {
        return a.clone();
    }
    let (ea, eb) = (i64::from(a.get_exp().unwrap_or(0)), i64::from(b.get_exp().unwrap_or(0)));
    let lsb = (ea - i64::from(a.prec())).min(eb - i64::from(b.prec()));
    let prec = (ea.max(eb) + 1 - lsb).clamp(1, i64::from(u32::MAX >> 2)) as u32;
    trimmed(Float::with_val(prec, a + b))
}

/// The exact product `a · b`.
fn exact_product(a: &Float, b: &Float) -> Float {
    trimmed(Float::with_val(a.prec() + b.prec(), a * b))
}

/// `x` with trailing zero bits dropped (exact).
fn trimmed(mut x: Float) -> Float {
    // SAFETY: `mpfr_min_prec` only reads the initialised `mpfr_t` behind `as_raw`, which outlives the call.
    let needed = unsafe { gmp_mpfr_sys::mpfr::min_prec(x.as_raw()) };
    let needed = u32::try_from(needed).unwrap_or(u32::MAX).max(1);
    if needed < x.prec() {
        x.set_prec_round(needed, Round::Nearest);
    }
    x
}

fn exponent_ok(x: &Float) -> bool {
    x.is_zero() || x.get_exp().is_some_and(|e| e.abs() < EXPONENT_LIMIT)
}

/// What the enclosure says about one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The faithful evaluation decodes this token.
    Decodes,
    /// It does not.
    Fails,
    /// The enclosure is too wide to tell: evaluate faithfully.
    Undecided,
}

/// Per-precision data of the enclosure of one thresholds FFN (module docs). Index `k − 1` holds the
/// values for `k` active units, row-major over the `d` output rows.
#[derive(Clone, Debug)]
pub(crate) struct ThresholdBounds {
    bits: u64,
    rows: usize,
    /// `P_k`.
    slope: Vec<Interval>,
    /// `D_{k−1}`.
    base: Vec<Interval>,
    /// Upper bound of `Σ_{j<k} |D_j| + V_k`.
    bound_base: Vec<Float>,
    /// Upper bound of `Σ_{j<k} w_j`.
    bound_slope: Vec<Float>,
}

impl ThresholdBounds {
    /// The bounds for thresholds `s_j` (ascending in unit order, `p`-bit values) and coefficient columns
    /// `c_j` (one per unit, `d` rows), or `None` when the enclosure does not apply (thresholds not
    /// ascending in unit order, or parameters outside the exponent limit).
    pub(crate) fn new(bits: u64, thresholds: &[&BigReal], columns: &[Vec<BigReal>], b2: &[BigReal]) -> Option<Self> {
        let rows = b2.len();
        if thresholds.len() != columns.len() || columns.iter().any(|c| c.len() != rows) {
            return None;
        }
        if thresholds.windows(2).any(|w| w[0] > w[1]) {
            return None;
        }
        let all = thresholds.iter().copied().chain(columns.iter().flatten()).chain(b2);
        if !all.into_iter().all(|x| x.as_float().is_finite() && exponent_ok(x.as_float())) {
            return None;
        }
        let k_max = thresholds.len();
        let mut slope = Vec::with_capacity(k_max * rows);
        let mut base = Vec::with_capacity(k_max * rows);
        let mut bound_base = Vec::with_capacity(k_max * rows);
        let mut bound_slope = Vec::with_capacity(k_max * rows);
        let zero = Float::new(IV_BITS);
        // Running values per row: P_j and D_{j−1} exact; G_j = Σ_{i<j} |D_i|, W_j = Σ_{i<j} w_i and V_j
        // rounded upwards.
        let mut p = vec![Float::new(1); rows];
        let mut d = vec![Float::new(1); rows];
        let (mut g, mut w, mut v) = (vec![zero.clone(); rows], vec![zero.clone(); rows], vec![zero.clone(); rows]);
        for j in 0..k_max {
            let sj = thresholds[j].as_float();
            let step = (j > 0).then(|| exact_sum(sj, &Float::with_val(thresholds[j - 1].as_float().prec(), -thresholds[j - 1].as_float())));
            for r in 0..rows {
                if let Some(step) = &step {
                    // D_j = D_{j−1} + P_j (s_j − s_{j−1});  V_{j+1} = V_j + W_j (s_j − s_{j−1}).
                    d[r] = exact_sum(&d[r], &exact_product(&p[r], step));
                    v[r] = add_up(&v[r], &mul_up(&w[r], &abs_up(step)));
                }
                let c = columns[j][r].as_float();
                p[r] = exact_sum(&p[r], c);
                g[r] = add_up(&g[r], &abs_up(&d[r]));
                let wj = add_up(&mul_up(&Float::with_val(IV_BITS, 2), &abs_up(c)), &abs_up(&p[r]));
                w[r] = add_up(&w[r], &wj);
                slope.push(Interval::of(&p[r]));
                base.push(Interval::of(&d[r]));
                bound_base.push(add_up(&g[r], &v[r]));
                bound_slope.push(w[r].clone());
            }
        }
        Some(Self { bits, rows, slope, base, bound_base, bound_slope })
    }

    /// The enclosure of a token's faithful output, one `(X_r, R_r)` per row with `|out_r − X_r| ≤ R_r` for
    /// every `X_r` in the interval: for FFN input projection `s` (computed faithfully) with `k` active units,
    /// `last` the threshold `s_{k−1}`, residual input `t` (the FFN's input token) and bias `b2`. `None`
    /// where the analysis does not apply (no active unit, `p < 40`, `k·2⁻ᵖ > 2⁻²⁰`, `s` out of range).
    fn enclose(&self, s: &BigReal, k: usize, last: Option<&BigReal>, t: &[BigReal], b2: &[BigReal]) -> Option<Vec<(Interval, Float)>> {
        let p = self.bits;
        let last = last.filter(|_| k > 0)?;
        if p < 40 || (k as f64).log2() + 20.0 > p as f64 || !exponent_ok(s.as_float()) {
            return None;
        }
        let one = Float::with_val(IV_BITS, 1);
        let slack = Float::with_val(IV_BITS, &one + Float::with_val(IV_BITS, Float::i_exp(1, -18)));
        let diff = Interval::difference(s.as_float(), last.as_float());
        let rows = (0..self.rows).map(|r| {
            let i = (k - 1) * self.rows + r;
            let a = self.base[i].add(&self.slope[i].mul(&diff));
            let a_b2 = a.add(&Interval::of(b2[r].as_float()));
            let x = a_b2.add(&Interval::of(t[r].as_float()));
            // E ≤ u(1 + 2^-19)(2T + S); R = (1 + 2^-18)(E + u|X| + u|A + b2|), u = 2^-p.
            let two_t_s = add_up(&self.bound_base[i], &mul_up(&self.bound_slope[i], &diff.hi));
            let sum = add_up(&add_up(&two_t_s, &x.abs_max()), &a_b2.abs_max());
            let radius = mul_up(&slack, &(sum >> (p as i32)));
            (x, radius)
        });
        Some(rows.collect())
    }

    /// The verdict for a token (arguments as for [`Self::enclose`]) with target `y`.
    pub(crate) fn decide(&self, s: &BigReal, k: usize, last: Option<&BigReal>, t: &[BigReal], b2: &[BigReal], y: &[BigReal]) -> Verdict {
        let Some(rows) = self.enclose(s, k, last, t, b2) else { return Verdict::Undecided };
        let half = Float::with_val(IV_BITS, 0.5);
        // ½(1 − 2^{2−p}) = ½ − 2^{1−p}, rounded down.
        let limit = Float::with_val_round(IV_BITS, &half - Float::with_val(IV_BITS, Float::i_exp(1, 1 - self.bits as i32)), Round::Down).0;
        let mut all_decode = true;
        for ((x, radius), target) in rows.iter().zip(y) {
            let err = x.sub(&Interval::of(target.as_float()));
            if Float::with_val_round(IV_BITS, &err.abs_min() - radius, Round::Down).0 >= half {
                return Verdict::Fails;
            }
            if add_up(&err.abs_max(), radius) >= limit {
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
    /// attention error would) and between points, at several precisions; the enclosure is not vacuous.
    #[test]
    fn faithful_outputs_lie_in_their_enclosures() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut tokens, mut tight) = (0, 0);
        for bits in [64u64, 200, 1000] {
            let (s, columns, y) = interpolation(&mut rng, 120, 3, bits);
            let b2: Vec<BigReal> = y[0].clone();
            let refs: Vec<&BigReal> = s.iter().collect();
            let bounds = ThresholdBounds::new(bits, &refs, &columns, &b2).expect("ascending thresholds in range");
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
                    let Some(rows) = bounds.enclose(&token, k, k.checked_sub(1).map(|i| &s[i]), &t, &b2) else {
                        assert!(k == 0 || bits < 40, "{bits} bits, k = {k}: the enclosure should apply");
                        continue;
                    };
                    tokens += 1;
                    for ((x, radius), o) in rows.iter().zip(&out) {
                        let o = o.as_float();
                        let below = Float::with_val_round(IV_BITS, &x.lo - radius, Round::Down).0;
                        let above = Float::with_val_round(IV_BITS, &x.hi + radius, Round::Up).0;
                        assert!(below <= *o && *o <= above, "{bits} bits, point {m}: {o} outside [{below}, {above}]");
                        // Not vacuous: the radius stays far below the decoding scale.
                        if *radius < Float::with_val(IV_BITS, Float::i_exp(1, -20)) {
                            tight += 1;
                        }
                    }
                }
            }
        }
        assert!(tight * 10 >= tokens * 3 * 9, "only {tight} of {} rows had a radius below 2^-20", tokens * 3);
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
