//! Corollary 1: a one-layer, single-head Transformer with rank-1 attention memorizes any N labelled
//! sequences.
//!
//! `F = F_FF ∘ F_SA`: the attention block is the [`ContextualMapping`]; the FFN reads the projected id
//! `s = vᵀz` and interpolates the residual targets `Y − z` piecewise-linearly through all distinct ids
//! `s_1 < … < s_K` ([`Interpolation`]):
//!
//! `F_FF(z) = z + Σ_{j≤K} c_j ReLU(vᵀz − s_j) + b_2`, `b_2 = Y_1 − z_1`,
//!
//! so that every id maps to its target. This is one hidden layer of width `K ≤ nN` shared by all d output
//! coordinates (`W_1 = 1·vᵀ` rank-1, `b_1 = −s`, `W_2 = [c_1 … c_K]`), i.e. `K(d+2) + 2d` FFN parameters;
//! the paper's `d(2nN + d)` counts d separate one-coordinate interpolants of Zhang et al. (`docs/theory.md`
//! §4).

use std::collections::BTreeMap;
use std::time::Instant;

use boltz_bigfloat::{BigFloatBackend, BigReal, BitsSearch, FfnEvaluation};
use boltz_core::{Backend, Batch, Block, Dataset, Error, FeedForward, Matrix, Memorization, Model, ParamCount, Real, Result, Weight};
use serde::{Deserialize, Serialize};

use crate::one_layer::contextual::{ContextReport, ContextualMapping, ContextualOptions, Policy};
use crate::verify::BitsSearchParams;

/// Everything about a built memorizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemorizerReport {
    /// The attention layer's constants and measured separation.
    pub contextual: ContextReport,
    /// Distinct context ids K (≤ nN).
    pub ids: usize,
    /// FFN hidden width `K`.
    pub hidden: usize,
    /// Parameters of the built model (dense and factored).
    pub params: ParamCount,
    /// The paper's count `4(s + d) + d(2nN + d)` with s = 1.
    pub paper_params: u64,
    /// Why the two counts differ.
    pub params_note: String,
    /// Bits the weights were computed with (and the model verified at).
    pub build_bits: u64,
    /// `log10` of the largest FFN slope `max |c_j|` (≈ 1/separation): what f64 would have to hold.
    pub log10_max_slope: f64,
    /// Seconds to build (contextual mapping + FFN).
    pub build_seconds: f64,
    /// Exact memorization at `build_bits` in arbitrary precision.
    pub memorization: Memorization,
    /// Seconds for that verification forward.
    pub verify_seconds: f64,
    /// [`Policy::FewestBits`]: the fewest-bits search of the chosen candidate, made while choosing it
    /// (`None` for other policies: call [`Memorizer::fewest_bits`]).
    #[serde(default)]
    pub fewest_bits: Option<BitsSearch>,
}

impl MemorizerReport {
    /// The analytic estimate of the fewest bits, `⌈log2(2R·|ΔT|/gap)⌉`: an error of relative size `2^-p`
    /// in a projected id `s` (|s| ≤ R, here the largest token projection `M`) moves the FFN's output by
    /// `2^-p·R` times its steepest slope `|ΔT|/gap` (`max |c_j|`, [`MemorizerReport::log10_max_slope`]),
    /// and a token decodes while that stays below ½. A starting point for the search, never its answer
    /// (`None` when the slope or `M` is not finite).
    pub fn bits_estimate(&self) -> Option<u64> {
        let r = self.contextual.projection.big_m.abs().max(f64::MIN_POSITIVE);
        let log2 = (2.0 * r).log2() + self.log10_max_slope * std::f64::consts::LOG2_10;
        log2.is_finite().then(|| log2.ceil().max(1.0) as u64)
    }
}

/// A built one-layer memorizer.
#[derive(Clone, Debug)]
pub struct Memorizer {
    /// Attention block + FFN block, weights in arbitrary precision.
    pub model: Model<BigReal>,
    /// Constants and measurements.
    pub report: MemorizerReport,
}

/// The paper's parameter count `4(s + d) + d(2nN + d)`.
pub fn paper_params(s: usize, d: usize, n: usize, big_n: usize) -> u64 {
    (4 * (s + d) + d * (2 * n * big_n + d)) as u64
}

impl Memorizer {
    /// Builds and verifies the memorizer for `data` (targets consistent under permutation, no repeated token
    /// inside a sequence).
    ///
    /// [`Policy::FewestBits`] (without an explicit `λ`): the contextual mapping ranks its `(v, λ)` candidates;
    /// the memorizers of the `verify_top` best-ranked are built and their fewest bits bisected; the one that
    /// needs fewest is returned, with every candidate's measurement in `contextual.lambda_search`.
    pub fn build(data: &Dataset<f64>, opts: &ContextualOptions) -> Result<Self> {
        if opts.policy == Policy::FewestBits && opts.lambda.is_none() && opts.verify_top > 0 {
            return Self::build_fewest_bits(data, opts);
        }
        Self::build_with(data, opts)
    }

    fn build_fewest_bits(data: &Dataset<f64>, opts: &ContextualOptions) -> Result<Self> {
        let start = Instant::now();
        let ranked = ContextualMapping::build(&data.inputs, opts)?.report.lambda_search;
        let mut search = ranked.clone();
        let mut best: Option<(Self, BitsSearch)> = None;
        for (i, c) in ranked.iter().enumerate().take(opts.verify_top) {
            if c.resolve_bits.is_none() {
                break;
            }
            let o = ContextualOptions { direction: Some(c.v.clone()), lambda: Some(c.lambda), ..opts.clone() };
            let m = Self::build_with(data, &o)?;
            let bits = m.fewest_bits(data, &BitsSearchParams::default().bits(8, m.report.build_bits).threads(opts.threads))?;
            search[i].fewest_bits = bits.fewest;
            let better = match (&best, bits.fewest) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some((_, b)), Some(f)) => b.fewest.is_none_or(|g| f < g),
            };
            if better || best.is_none() {
                best = Some((m, bits));
            }
        }
        let (mut m, bits) = best.ok_or_else(|| Error::Infeasible("no softmax scale λ separated the contexts".into()))?;
        m.report.contextual.lambda_search = search;
        m.report.fewest_bits = Some(bits);
        m.report.build_seconds = start.elapsed().as_secs_f64();
        Ok(m)
    }

    fn build_with(data: &Dataset<f64>, opts: &ContextualOptions) -> Result<Self> {
        let start = Instant::now();
        let cm = ContextualMapping::build(&data.inputs, opts)?;
        let bits = cm.report.bits;
        let d = data.inputs.dim();
        let v: Vec<BigReal> = cm.report.projection.v.iter().map(|&x| BigReal::from_f64(x).with_bits(bits)).collect();

        // One representative per context key: (s, residual target Y − z).
        let mut reps: BTreeMap<usize, (BigReal, Vec<BigReal>, usize)> = BTreeMap::new();
        for (pos, (&key, s)) in cm.keys.iter().zip(&cm.projected).enumerate() {
            let b = pos / data.inputs.len();
            let k = pos % data.inputs.len();
            let target: Vec<BigReal> = data.targets.token(b, k).iter().map(|&y| BigReal::from_f64(y).with_bits(bits)).collect();
            let z = cm.ids.token(b, k);
            let residual: Vec<BigReal> = target.iter().zip(z).map(|(y, zi)| y.sub(zi)).collect();
            match reps.get(&key) {
                None => {
                    reps.insert(key, (s.clone(), residual, pos));
                }
                Some((_, _, first)) => {
                    let (fb, fk) = (first / data.inputs.len(), first % data.inputs.len());
                    if data.targets.token(fb, fk) != data.targets.token(b, k) {
                        return Err(Error::InconsistentTargets { first: fb, second: b });
                    }
                }
            }
        }
        let points: Vec<(BigReal, Vec<BigReal>)> = reps.into_values().map(|(s, r, _)| (s, r)).collect();
        let interp = Interpolation::through(points, &v, bits);
        let (big_k, ffn, max_slope_log2) = (interp.points, interp.ffn, interp.max_slope_log2);
        let q = ffn.as_ref().map_or(0, FeedForward::hidden);
        let attention = cm.model.blocks()[0].attention.clone();
        let mut info = cm.model.info().clone().with("build_bits", bits);
        info.construction = "one-layer".into();
        let model = Model::new(d, vec![Block { attention, ffn }], info)?;
        let build_seconds = start.elapsed().as_secs_f64();

        let t = Instant::now();
        let x: Batch<BigReal> = data.inputs.convert()?;
        let y: Batch<BigReal> = data.targets.convert()?;
        // Verified at the build precision with prefix-sum FFN evaluation (fast; exact results here either
        // way). Bits *needed* are measured with the faithful term-by-term evaluation ([`Self::fewest_bits`]).
        let out = BigFloatBackend::with_threads(bits, opts.threads)?.with_ffn_evaluation(FfnEvaluation::PrefixSums).run(&model, &x)?;
        let memorization = Memorization::measure(&out, &y)?;
        let (n, big_n) = (data.inputs.len(), data.inputs.batch());
        let report = MemorizerReport {
            ids: big_k,
            hidden: q,
            params: model.param_count(),
            paper_params: paper_params(1, d, n, big_n),
            params_note: "one hidden layer of width K shared by the d output coordinates: K(d+2)+2d FFN parameters \
                          (W_1 = 1·vᵀ rank-1, b_1, W_2 dense d×K, b_2) plus 4(1+d) for the rank-1 attention; the paper's \
                          d(2nN+d) counts d separate one-coordinate interpolants"
                .into(),
            build_bits: bits,
            log10_max_slope: max_slope_log2 * std::f64::consts::LOG10_2,
            build_seconds,
            memorization,
            verify_seconds: t.elapsed().as_secs_f64(),
            contextual: cm.report,
            fewest_bits: None,
        };
        Ok(Self { model, report })
    }

    /// The fewest bits at which every token still decodes to its label (weights, inputs and arithmetic
    /// all at that precision; faithful evaluation; [`crate::verify::fewest_bits_to_memorize`]). Without a
    /// guess in `params` the search starts from [`MemorizerReport::bits_estimate`] and gallops from there
    /// ([`boltz_bigfloat::fewest_bits_near`]): the same answer as a bisection, in fewer probes when the
    /// estimate is close.
    pub fn fewest_bits(&self, data: &Dataset<f64>, params: &BitsSearchParams) -> Result<BitsSearch> {
        let params = params.guess(params.guess.or(self.report.bits_estimate()));
        crate::verify::fewest_bits_to_memorize(&self.model, data, &params, |_, _| {})
    }

    /// Runs the model rounded to `T` (f32 or f64) on `backend` and measures memorization; an
    /// [`Error::NonFinite`] means the weights do not even fit `T`.
    pub fn in_precision<T: Real, B: Backend<T>>(&self, data: &Dataset<f64>, backend: &B) -> Result<Memorization> {
        crate::verify::memorization_in(&self.model, data, backend)
    }
}

/// A piecewise-linear interpolating FFN through points `(s_k, y_k)` of the projection `s = vᵀz`.
pub struct Interpolation {
    /// The FFN (`None` only without points; a single point gets one unit with a zero slope and its bias).
    pub ffn: Option<FeedForward<BigReal>>,
    /// Number of distinct points K.
    pub points: usize,
    /// `log2 max |c_j|`.
    pub max_slope_log2: f64,
}

impl Interpolation {
    /// The piecewise-linear interpolant through every `(s_k, y_k)`, flat outside `[s_1, s_K]`:
    /// `F(z) = y_1 + Σ_{j≤K} c_j ReLU(vᵀz − s_j)` with `c_j = slope_j − slope_{j−1}`,
    /// `slope_j = (y_{j+1} − y_j)/(s_{j+1} − s_j)` (`slope_0 = slope_K = 0`). Between neighbouring ids it
    /// stays between their values, so inputs that land between ids (e.g. the approximator's boundary slabs)
    /// get bounded outputs. Points need not be sorted; their `s` must be distinct. Arithmetic at `bits` bits.
    pub fn through(mut points: Vec<(BigReal, Vec<BigReal>)>, v: &[BigReal], bits: u64) -> Self {
        points.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        let big_k = points.len();
        let d = points.first().map_or(0, |p| p.1.len());
        let zero = BigReal::from_f64(0.0).with_bits(bits);
        let slopes: Vec<Vec<BigReal>> = points
            .windows(2)
            .map(|w| {
                let ds = w[1].0.sub(&w[0].0);
                (0..d).map(|i| w[1].1[i].sub(&w[0].1[i]).div(&ds)).collect()
            })
            .chain(std::iter::once(vec![zero.clone(); d]))
            .collect();
        let mut coefficients: Vec<Vec<BigReal>> = Vec::with_capacity(big_k);
        let mut max_slope_log2 = f64::NEG_INFINITY;
        let mut previous = vec![zero; d];
        for slope in &slopes {
            let c: Vec<BigReal> = slope.iter().zip(&previous).map(|(a, b)| a.sub(b)).collect();
            for x in &c {
                if !x.is_zero() {
                    max_slope_log2 = max_slope_log2.max(x.log2_abs());
                }
            }
            coefficients.push(c);
            previous = slope.clone();
        }
        // One point still needs the layer: its bias b_2 = y_1 − z_1 (one unit with a zero slope).
        let q = big_k;
        let ffn = (q > 0).then(|| FeedForward {
            w1: Weight::rank_one(vec![BigReal::from_f64(1.0); q], v.to_vec()),
            b1: points.iter().map(|p| p.0.neg()).collect(),
            w2: Weight::Dense(Matrix::from_fn(d, q, |r, j| coefficients[j][r].clone())),
            b2: points.first().map(|p| p.1.clone()).unwrap_or_default(),
        });
        Self { ffn, points: big_k, max_slope_log2 }
    }
}
