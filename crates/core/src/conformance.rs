//! The one conformance suite that every backend must pass unchanged.
//!
//! Each case is a generic function `fn case<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String>`
//! and [`conformance_suite!`](crate::conformance_suite) stamps out one `#[test]` per case for a backend and
//! element type (burn's testgen pattern). Outputs are compared with the [`ReferenceBackend`](crate::ReferenceBackend) run in `f64` on
//! the *same* weights and inputs (converted losslessly from `T`), element-wise:
//!
//! `|y − y_ref| ≤ tol · max(1, ‖y_ref‖_∞)` with `tol` = [`tolerance_for_bits`]: `2e-5` for f32 (24 bits),
//! `1e-12` for f64 (53 bits).
//!
//! Random cases cover 1–4 blocks, 1–3 heads, head sizes 1–4, factored ranks 1..s and dense weights,
//! softmax and hardmax, with and without query bias and causal mask, and odd sizes (n = 1, d = 1,
//! batch = 1, sizes not multiples of 8). Hardmax cases whose reference run has a relative gap below 1e-3
//! between the top score and the runner-up are redrawn, because there a different rounding may legitimately
//! pick another maximiser; exact ties are kept (they split the weight equally in every backend).
//!
//! A constructor that returns [`Error::NoDevice`] makes the tests print `SKIPPED <backend>: <reason>` and
//! pass, unless `BOLTZ_REQUIRE_BACKEND=<backend>` is set, which turns the skip into a failure.

use crate::backend::Backend;
use crate::error::{Error, Result};
pub use crate::fixtures::{random_batch, random_model, RandomModelSpec};
use crate::model::{Attention, AttentionHead, Block, FeedForward, Model, ModelInfo, Normalizer, Weight};
use crate::real::Real;
use crate::reference::{DenseModel, ForwardTrace};
use crate::rng::SeededRng;
use crate::tensor::{Batch, Matrix};

/// The comparison tolerance for a type with `bits` mantissa bits (see the module docs).
pub fn tolerance_for_bits(bits: u64) -> f64 {
    match bits {
        0..=24 => 2e-5 * 2f64.powi(24 - bits as i32),
        25..=53 => 1e-12 * 2f64.powi(53 - bits as i32),
        _ => 1e-12,
    }
}

fn pick<X: Copy>(rng: &mut SeededRng, xs: &[X]) -> X {
    xs[rng.below(xs.len() as u64) as usize]
}

/// A random spec for case `seed` (see the module docs for the ranges).
pub fn random_spec(rng: &mut SeededRng) -> (RandomModelSpec, [usize; 2]) {
    let dim = pick(rng, &[1, 2, 3, 5, 8, 13, 16]);
    let head_size = pick(rng, &[1, 1, 2, 3, 4]);
    let spec = RandomModelSpec {
        normalizer: pick(rng, &[Normalizer::Softmax, Normalizer::Hardmax]),
        causal: rng.below(2) == 1,
        query_bias: rng.below(2) == 1,
        factor_rank: pick(rng, &[None, Some(1), Some(2), Some(head_size)]),
        ..RandomModelSpec::sized(dim, 1 + rng.below(4) as usize, 1 + rng.below(3) as usize, head_size, pick(rng, &[0, 1, 4, 7, 16]))
    };
    (spec, [pick(rng, &[1, 2, 3, 5]), pick(rng, &[1, 2, 3, 7, 9, 16])])
}

/// Converts an f64 model and batch to `T` (rounding), and the result back to f64 (exactly).
fn in_type<T: Real>(model: &Model<f64>, x: &Batch<f64>) -> (Model<T>, Batch<T>, Model<f64>, Batch<f64>) {
    let mt: Model<T> = model.convert().expect("invariant: moderate weights fit every type");
    let xt: Batch<T> = x.convert().expect("invariant: inputs in [-1, 1] fit every type");
    let m64 = mt.convert().expect("invariant: widening is lossless");
    let x64 = xt.convert().expect("invariant: widening is lossless");
    (mt, xt, m64, x64)
}

fn reference(model: &Model<f64>, x: &Batch<f64>) -> Result<(Batch<f64>, ForwardTrace)> {
    DenseModel::new(model).forward_traced(x)
}

/// Compares `actual` with `expected` under the module's tolerance rule.
pub fn assert_close<T: Real>(what: &str, actual: &Batch<T>, expected: &Batch<f64>, tol: f64) -> Result<(), String> {
    if actual.shape() != expected.shape() {
        return Err(format!("{what}: output shape {:?}, expected {:?}", actual.shape(), expected.shape()));
    }
    let scale = expected.as_slice().iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let mut worst = (0.0f64, 0usize);
    for (i, (a, e)) in actual.as_slice().iter().zip(expected.as_slice()).enumerate() {
        let err = (a.to_f64() - e).abs();
        if err.is_nan() || err > worst.0 {
            worst = (err, i);
        }
    }
    if worst.0.is_nan() || worst.0 > tol * scale {
        let i = worst.1;
        let d = expected.dim();
        let n = expected.len();
        return Err(format!(
            "{what}: |Δ| = {:e} at [{}][{}][{}] (got {}, expected {}) exceeds {tol:e} · {scale:e}",
            worst.0,
            i / (n * d),
            (i / d) % n,
            i % d,
            actual.as_slice()[i],
            expected.as_slice()[i]
        ));
    }
    Ok(())
}

fn run_backend<T: Real, B: Backend<T>>(backend: &B, model: &Model<T>, x: &Batch<T>) -> Result<Batch<T>, String> {
    backend.run(model, x).map_err(|e| format!("backend {} failed: {e}", backend.name()))
}

/// Random well-conditioned cases (64 of them) agree with the f64 reference.
pub fn random_models_match_reference<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let mut accepted = 0;
    let mut seed = 0u64;
    while accepted < 64 {
        seed += 1;
        let mut rng = SeededRng::new(seed);
        let (spec, [batch, n]) = random_spec(&mut rng);
        let model = random_model(&mut rng, &spec);
        let x = random_batch(&mut rng, batch, n, spec.dim);
        let (mt, xt, m64, x64) = in_type::<T>(&model, &x);
        let (expected, trace) = reference(&m64, &x64).map_err(|e| e.to_string())?;
        if trace.min_hardmax_gap < 1e-3 {
            continue;
        }
        accepted += 1;
        let got = run_backend(backend, &mt, &xt)?;
        assert_close(&format!("random case {seed} ({spec:?}, batch {batch}, n {n})"), &got, &expected, tol)?;
    }
    Ok(())
}

/// Degenerate and odd sizes: n = 1, d = 1, batch = 1, and sizes that are not multiples of 8.
pub fn odd_sizes_match_reference<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let shapes = [(1, 1, 1), (1, 1, 7), (1, 9, 1), (3, 1, 5), (2, 17, 13), (1, 33, 3), (5, 8, 8), (2, 65, 2)];
    for (i, &(batch, n, d)) in shapes.iter().enumerate() {
        for (j, &normalizer) in [Normalizer::Softmax, Normalizer::Hardmax].iter().enumerate() {
            let mut rng = SeededRng::new(1000 + 10 * i as u64 + j as u64);
            let spec = RandomModelSpec {
                normalizer,
                causal: i % 2 == 1,
                query_bias: true,
                factor_rank: if i % 3 == 0 { None } else { Some(1 + i % 3) },
                ..RandomModelSpec::sized(d, 2, 2, 3, 5)
            };
            let model = random_model(&mut rng, &spec);
            let x = random_batch(&mut rng, batch, n, d);
            let (mt, xt, m64, x64) = in_type::<T>(&model, &x);
            let (expected, trace) = reference(&m64, &x64).map_err(|e| e.to_string())?;
            if trace.min_hardmax_gap < 1e-3 {
                continue;
            }
            let got = run_backend(backend, &mt, &xt)?;
            assert_close(&format!("shape [{batch}, {n}, {d}] {normalizer:?}"), &got, &expected, tol)?;
        }
    }
    Ok(())
}

/// Head sizes a backend may treat differently (vector widths, a warp per row above 4, two components per
/// lane above 32): 5, 8, 31, 32, 33, 64, under both normalizers, causal and not.
pub fn wide_heads_match_reference<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let mut compared = 0;
    for (i, &head_size) in [5usize, 8, 31, 32, 33, 64].iter().enumerate() {
        for (j, &normalizer) in [Normalizer::Softmax, Normalizer::Hardmax].iter().enumerate() {
            let mut rng = SeededRng::new(2000 + 10 * i as u64 + j as u64);
            let spec = RandomModelSpec {
                normalizer,
                causal: j == i % 2,
                query_bias: i % 3 == 0,
                factor_rank: if i % 2 == 0 { None } else { Some(2) },
                ..RandomModelSpec::sized(16, 2, 1 + i % 2, head_size, 8)
            };
            let model = random_model(&mut rng, &spec);
            let x = random_batch(&mut rng, 3, 17, 16);
            let (mt, xt, m64, x64) = in_type::<T>(&model, &x);
            let (expected, trace) = reference(&m64, &x64).map_err(|e| e.to_string())?;
            if trace.min_hardmax_gap < 1e-3 {
                continue;
            }
            let got = run_backend(backend, &mt, &xt)?;
            assert_close(&format!("head size {head_size} {normalizer:?}"), &got, &expected, tol)?;
            compared += 1;
        }
    }
    // Every softmax case and some hardmax cases (the others are skipped for near-ties) must have run.
    if compared < 8 {
        return Err(format!("only {compared} of 12 wide-head cases had a clear hardmax margin; the case needs new seeds"));
    }
    Ok(())
}

fn seq_model<T: Real>(seed: u64, normalizer: Normalizer, causal: bool) -> (Model<T>, Batch<T>) {
    let mut rng = SeededRng::new(seed);
    let spec = RandomModelSpec { normalizer, causal, query_bias: true, factor_rank: Some(1), ..RandomModelSpec::sized(4, 2, 2, 2, 6) };
    let model = random_model(&mut rng, &spec);
    let x = random_batch(&mut rng, 3, 6, 4);
    let (mt, xt, _, _) = in_type::<T>(&model, &x);
    (mt, xt)
}

/// Without a mask, permuting the tokens of a sequence permutes the outputs (attention is
/// permutation-equivariant).
pub fn permutation_equivariance<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let (model, x) = seq_model::<T>(77, Normalizer::Softmax, false);
    let perm = [3, 0, 5, 1, 4, 2];
    let permute = |b: &Batch<T>| -> Batch<T> {
        let (n, d) = (b.len(), b.dim());
        let data = (0..b.batch())
            .flat_map(|s| perm.iter().flat_map(move |&k| b.as_slice()[(s * n + k) * d..(s * n + k + 1) * d].to_vec()))
            .collect();
        Batch::new(b.batch(), n, d, data).expect("invariant: same shape")
    };
    let y = run_backend(backend, &model, &x)?;
    let y_perm = run_backend(backend, &model, &permute(&x))?;
    let expected: Batch<f64> = permute(&y).convert().map_err(|e| e.to_string())?;
    assert_close("permuted input", &y_perm, &expected, tol)
}

/// With a causal mask, outputs at positions ≤ k do not depend on tokens after k.
pub fn causal_prefix_independence<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    for normalizer in [Normalizer::Softmax, Normalizer::Hardmax] {
        let (model, x) = seq_model::<T>(78, normalizer, true);
        let (n, d) = (x.len(), x.dim());
        let k = 2;
        let mut changed = x.as_slice().to_vec();
        for s in 0..x.batch() {
            for v in &mut changed[(s * n + k + 1) * d..(s + 1) * n * d] {
                *v = v.mul(&T::from_f64(-3.0)).add(&T::from_f64(0.25));
            }
        }
        let changed = Batch::new(x.batch(), n, d, changed).map_err(|e| e.to_string())?;
        let y = run_backend(backend, &model, &x)?;
        let y2 = run_backend(backend, &model, &changed)?;
        let prefix = |b: &Batch<T>| -> Result<Batch<T>, String> {
            let data = (0..b.batch()).flat_map(|s| b.sequence(s)[..(k + 1) * d].to_vec()).collect();
            Batch::new(b.batch(), k + 1, d, data).map_err(|e| e.to_string())
        };
        let expected: Batch<f64> = prefix(&y)?.convert().map_err(|e| e.to_string())?;
        assert_close(&format!("causal prefix ({normalizer:?})"), &prefix(&y2)?, &expected, tol)?;
    }
    Ok(())
}

/// A batch gives the same outputs as its sequences run one at a time; repeated runs are bit-identical.
pub fn batch_independence_and_determinism<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let (model, x) = seq_model::<T>(79, Normalizer::Softmax, false);
    let prepared = backend.prepare(&model).map_err(|e| e.to_string())?;
    let y = backend.forward(&prepared, &x).map_err(|e| e.to_string())?;
    let again = backend.forward(&prepared, &x).map_err(|e| e.to_string())?;
    if y != again {
        return Err("two forwards of the same prepared model and input differ".into());
    }
    let expected: Batch<f64> = y.convert().map_err(|e| e.to_string())?;
    for s in 0..x.batch() {
        let one = x.slice(s..s + 1).map_err(|e| e.to_string())?;
        let ys = backend.forward(&prepared, &one).map_err(|e| e.to_string())?;
        let exp = expected.slice(s..s + 1).map_err(|e| e.to_string())?;
        assert_close(&format!("sequence {s} alone"), &ys, &exp, tol)?;
    }
    Ok(())
}

/// A model without blocks is the identity, exactly.
pub fn empty_model_is_identity<T: Real, B: Backend<T>>(backend: &B, _tol: f64) -> Result<(), String> {
    // Values k/64 fit every precision ≥ 8 bits, so no backend needs to round them.
    let mut rng = SeededRng::new(80);
    let data = (0..30).map(|_| T::from_f64((rng.below(129) as f64 - 64.0) / 64.0)).collect();
    let x = Batch::new(2, 5, 3, data).map_err(|e| e.to_string())?;
    let model = Model::new(3, vec![], ModelInfo::named("identity")).map_err(|e| e.to_string())?;
    let y = run_backend(backend, &model, &x)?;
    if y != x {
        return Err("a model without blocks changed its input".into());
    }
    Ok(())
}

fn scalar_head<T: Real>(q: f64, k: f64, v: f64, o: f64, b_q: Option<f64>) -> AttentionHead<T> {
    let m = |x: f64| Weight::Dense(Matrix::row_vector(vec![T::from_f64(x)]));
    AttentionHead { w_q: m(q), w_k: m(k), w_v: m(v), w_o: m(o), b_q: b_q.map(|b| vec![T::from_f64(b)]) }
}

fn scalar_batch<T: Real>(xs: &[f64]) -> Batch<T> {
    Batch::new(1, xs.len(), 1, xs.iter().map(|&x| T::from_f64(x)).collect()).expect("invariant: finite")
}

fn one_layer<T: Real>(d: usize, head: AttentionHead<T>, normalizer: Normalizer) -> Model<T> {
    Model::new(
        d,
        vec![Block { attention: Some(Attention { heads: vec![head], normalizer, causal: false }), ffn: None }],
        ModelInfo::named("test"),
    )
    .expect("invariant: test models are well-formed")
}

/// Softmax of logits ±2000 is exactly one-hot (no overflow, no NaN): the max-shift is in place.
pub fn softmax_extreme_logits<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let model = one_layer(1, scalar_head::<T>(1000.0, 1.0, 1.0, 1.0, None), Normalizer::Softmax);
    let y = run_backend(backend, &model, &scalar_batch(&[1.0, -1.0, 2.0]))?;
    // Query 1.0: scores (1000, -1000, 2000) → token 2.0 wins; query -1.0 → token -1.0; query 2.0 → 2.0.
    assert_close("softmax with logits ±2000", &y, &scalar_batch(&[3.0, -2.0, 4.0]), tol)
}

/// Hardmax splits the weight equally over exactly tied maxima, and takes the unique maximiser otherwise.
pub fn hardmax_ties_split_equally<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let model = one_layer(1, scalar_head::<T>(1.0, 1.0, 1.0, 1.0, None), Normalizer::Hardmax);
    let y = run_backend(backend, &model, &scalar_batch(&[2.0, -2.0, 2.0, 1.0]))?;
    // Query 2: scores (4, -4, 4, 2): tokens 0 and 2 tie → mean 2 → 4. Query -2: token 1 → -4. Query 1: tie → 3.
    assert_close("hardmax with ties", &y, &scalar_batch(&[4.0, -4.0, 4.0, 3.0]), tol)?;
    // All scores equal (W_Q = 0): every query averages all values.
    let d = 2;
    let eye = |x: f64| Weight::Dense(Matrix::from_fn(d, d, |r, c| T::from_f64(if r == c { x } else { 0.0 })));
    let head = AttentionHead { w_q: eye(0.0), w_k: eye(1.0), w_v: eye(1.0), w_o: eye(1.0), b_q: None };
    let model = one_layer(d, head, Normalizer::Hardmax);
    let xs = [0.5, -1.0, 1.5, 0.25, -0.5, 2.0, 0.5, 0.75];
    let x = Batch::new(1, 4, 2, xs.iter().map(|&v| T::from_f64(v)).collect()).map_err(|e| e.to_string())?;
    let y = run_backend(backend, &model, &x)?;
    let mean = [0.5, 0.5];
    let expected: Vec<f64> = xs.iter().enumerate().map(|(i, v)| v + mean[i % 2]).collect();
    assert_close("hardmax with all scores tied", &y, &Batch::new(1, 4, 2, expected).map_err(|e| e.to_string())?, tol)
}

/// Yun et al.'s selective-shift head: with a query bias `b`, hardmax over `x_i (x_j − b)` picks the largest
/// token for queries above `b` and the smallest below it.
pub fn query_bias_selects_extremes<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let model = one_layer(1, scalar_head::<T>(1.0, 1.0, 1.0, 1.0, Some(-0.375)), Normalizer::Hardmax);
    let y = run_backend(backend, &model, &scalar_batch(&[0.125, 0.5, 0.875]))?;
    assert_close("selective shift", &y, &scalar_batch(&[0.25, 1.375, 1.75]), tol)
}

/// A rank-1 softmax head `W_K = W_V = vᵀ`, `W_Q = λvᵀ`, `W_O = u` adds `u · boltz(a) / (λ vᵀx_j)` with
/// `a_i = λ (vᵀx_i)(vᵀx_j)` (the Boltzmann-operator reading, `docs/theory.md` §2.1), computed here independently.
pub fn rank_one_head_is_boltzmann<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let (v, u, lambda) = ([0.6, -0.8, 0.0], [0.25, 0.5, -1.0], 1.7);
    let w = |s: f64| Weight::rank_one(vec![T::from_f64(s)], v.iter().map(|&x| T::from_f64(x)).collect());
    let head = AttentionHead {
        w_q: w(lambda),
        w_k: w(1.0),
        w_v: w(1.0),
        w_o: Weight::rank_one(u.iter().map(|&x| T::from_f64(x)).collect(), vec![T::from_f64(1.0)]),
        b_q: None,
    };
    let model = one_layer(3, head, Normalizer::Softmax);
    let tokens = [[1.0, 0.5, -0.25], [-0.5, 1.0, 2.0], [0.75, -1.0, 0.5], [0.0, 0.25, 1.0]];
    let x = Batch::new(1, 4, 3, tokens.iter().flatten().map(|&t| T::from_f64(t)).collect()).map_err(|e| e.to_string())?;
    let y = run_backend(backend, &model, &x)?;
    let proj: Vec<f64> = tokens.iter().map(|t| t.iter().zip(&v).map(|(a, b)| a * b).sum()).collect();
    let mut expected = Vec::new();
    for (j, t) in tokens.iter().enumerate() {
        let a: Vec<f64> = proj.iter().map(|p| lambda * p * proj[j]).collect();
        let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = a.iter().map(|x| (x - m).exp()).sum();
        let boltz: f64 = a.iter().map(|x| x * (x - m).exp()).sum::<f64>() / z;
        let scale = boltz / (lambda * proj[j]);
        expected.extend(t.iter().zip(&u).map(|(ti, ui)| ti + ui * scale));
    }
    assert_close("rank-1 head vs Boltzmann operator", &y, &Batch::new(1, 4, 3, expected).map_err(|e| e.to_string())?, tol)
}

/// `F_FF(z) = z + W_2 ReLU(W_1 z + b_1) + b_2` on a hand-computed example.
pub fn feed_forward_hand_computed<T: Real, B: Backend<T>>(backend: &B, tol: f64) -> Result<(), String> {
    let t = |xs: &[f64]| xs.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
    let ffn = FeedForward {
        w1: Weight::Dense(Matrix::new(3, 2, t(&[1.0, 0.0, 0.0, 1.0, 1.0, -1.0])).map_err(|e| e.to_string())?),
        b1: t(&[0.0, -1.0, 0.5]),
        w2: Weight::Dense(Matrix::new(2, 3, t(&[1.0, 2.0, 0.0, 0.0, 1.0, -1.0])).map_err(|e| e.to_string())?),
        b2: t(&[0.25, -0.25]),
    };
    let model = Model::new(2, vec![Block { attention: None, ffn: Some(ffn) }], ModelInfo::named("test")).map_err(|e| e.to_string())?;
    let x = Batch::new(1, 2, 2, t(&[2.0, 3.0, -1.0, 0.5])).map_err(|e| e.to_string())?;
    // z = (2, 3): h = relu(2, 2, -0.5) = (2, 2, 0); W2 h = (6, 2); out = (2, 3) + (6, 2) + (0.25, -0.25).
    // z = (-1, 0.5): h = relu(-1, -0.5, -1) = 0; out = z + b2.
    assert_close(
        "hand-computed FFN",
        &run_backend(backend, &model, &x)?,
        &Batch::new(1, 2, 2, vec![8.25, 4.75, -0.75, 0.25]).map_err(|e| e.to_string())?,
        tol,
    )
}

/// Inputs whose token dimension differs from the model's are a [`Error::ShapeMismatch`], not a panic.
pub fn dimension_mismatch_is_an_error<T: Real, B: Backend<T>>(backend: &B, _tol: f64) -> Result<(), String> {
    let model = one_layer(1, scalar_head::<T>(1.0, 1.0, 1.0, 1.0, None), Normalizer::Softmax);
    let x = Batch::new(1, 2, 2, vec![T::from_f64(1.0); 4]).map_err(|e| e.to_string())?;
    match backend.run(&model, &x) {
        Err(Error::ShapeMismatch { .. }) => Ok(()),
        other => Err(format!("expected a shape-mismatch error, got {other:?}")),
    }
}

/// A forward that overflows the element type is an [`Error::Overflow`], not a silent inf/NaN.
pub fn overflow_is_an_error<T: Real, B: Backend<T>>(backend: &B, _tol: f64) -> Result<(), String> {
    let big = if T::from_f64(1e200).is_finite() { 1e200 } else { 1e30 };
    let b = T::from_f64(big);
    if b.mul(&b).mul(&b).is_finite() {
        return Ok(()); // this type's exponent range cannot overflow here
    }
    let m = |x: f64| Weight::Dense(Matrix::row_vector(vec![T::from_f64(x)]));
    let ffn = FeedForward {
        w1: m(big),
        b1: vec![T::from_f64(0.0)],
        w2: Weight::Dense(Matrix::column_vector(vec![T::from_f64(big)])),
        b2: vec![T::from_f64(0.0)],
    };
    let model = Model::new(1, vec![Block { attention: None, ffn: Some(ffn) }], ModelInfo::named("test")).map_err(|e| e.to_string())?;
    match backend.run(&model, &scalar_batch(&[big])) {
        Err(Error::Overflow { .. }) => Ok(()),
        other => Err(format!("expected an overflow error, got {other:?}")),
    }
}

/// The backends `BOLTZ_REQUIRE_BACKEND` may name.
pub const KNOWN_BACKENDS: [&str; 5] = ["reference", "cpu", "blas", "bigfloat", "cuda"];

/// The backends a `BOLTZ_REQUIRE_BACKEND` value names: comma-separated, case-insensitive (`CUDA` = `cuda`);
/// an unknown name is an error (a typo must not turn a required backend into a silent skip).
pub fn parse_required_backends(value: &str) -> std::result::Result<Vec<String>, String> {
    value
        .split(',')
        .map(|x| x.trim().to_ascii_lowercase())
        .filter(|x| !x.is_empty())
        .map(|x| {
            if KNOWN_BACKENDS.contains(&x.as_str()) {
                Ok(x)
            } else {
                Err(format!("BOLTZ_REQUIRE_BACKEND names an unknown backend {x:?} (known: {})", KNOWN_BACKENDS.join(", ")))
            }
        })
        .collect()
}

/// Whether `BOLTZ_REQUIRE_BACKEND` (see [`parse_required_backends`]) names `name`; unset means no.
pub fn backend_required(name: &str) -> std::result::Result<bool, String> {
    match std::env::var("BOLTZ_REQUIRE_BACKEND") {
        Ok(v) => Ok(parse_required_backends(&v)?.iter().any(|x| x == name)),
        Err(_) => Ok(false),
    }
}

/// Obtains the backend for a test, or `None` (after printing `SKIPPED`) when it has no device and
/// `BOLTZ_REQUIRE_BACKEND` does not name it.
pub fn obtain<B>(name: &str, ctor: impl FnOnce() -> Result<B>) -> Option<B> {
    match ctor() {
        Ok(b) => Some(b),
        Err(Error::NoDevice { reason, .. }) => {
            let required = backend_required(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(!required, "BOLTZ_REQUIRE_BACKEND={name} but the backend has no device: {reason}");
            eprintln!("SKIPPED {name}: {reason}");
            None
        }
        Err(e) => panic!("could not create backend {name}: {e}"),
    }
}

/// Stamps out one `#[test]` per conformance case for a backend and element type.
///
/// ```text
/// boltz_core::conformance_suite!(mod f64_suite, name: "reference", elem: f64, ctor: || Ok(ReferenceBackend::new()));
/// ```
#[macro_export]
macro_rules! conformance_suite {
    (mod $m:ident, name: $name:expr, elem: $t:ty, ctor: $ctor:expr) => {
        $crate::conformance_suite!(mod $m, name: $name, elem: $t, ctor: $ctor, tol: $crate::conformance::tolerance_for_bits(
            <$t as $crate::Real>::mantissa_bits(&<$t as $crate::Real>::from_f64(0.0))));
    };
    (mod $m:ident, name: $name:expr, elem: $t:ty, ctor: $ctor:expr, tol: $tol:expr) => {
        mod $m {
            #[allow(unused_imports)]
            use super::*;
            // A neutral attribute: nothing is ignored.
            $crate::conformance_suite!(@all [allow(unused)] $name, $t, $ctor, $tol);
        }
    };
    // The three cases that run hundreds of random forwards (`random_models_match_reference`,
    // `odd_sizes_match_reference`, `wide_heads_match_reference`) are `#[ignore]`d with `$reason` (e.g. a
    // precision where each takes minutes); run them with `cargo test -- --ignored`. The rest run as usual.
    (mod $m:ident, name: $name:expr, elem: $t:ty, ctor: $ctor:expr, tol: $tol:expr, heavy_ignored: $reason:literal) => {
        mod $m {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_suite!(@all [ignore = $reason] $name, $t, $ctor, $tol);
        }
    };
    // The one list of cases (`CASES` names them in the same order); the heavy ones get `$heavy`.
    (@all [$heavy:meta] $name:expr, $t:ty, $ctor:expr, $tol:expr) => {
        $crate::conformance_suite!(@cases [$heavy] $name, $t, $ctor, $tol,
            random_models_match_reference, odd_sizes_match_reference, wide_heads_match_reference);
        $crate::conformance_suite!(@cases $name, $t, $ctor, $tol,
            permutation_equivariance,
            causal_prefix_independence, batch_independence_and_determinism, empty_model_is_identity,
            softmax_extreme_logits, hardmax_ties_split_equally, query_bias_selects_extremes,
            rank_one_head_is_boltzmann, feed_forward_hand_computed, dimension_mismatch_is_an_error,
            overflow_is_an_error);
    };
    // Before the plain arm: a forwarded `meta` fragment must not be tried as an expression.
    (@cases [$attr:meta] $name:expr, $t:ty, $ctor:expr, $tol:expr, $($case:ident),+) => {
        $(
            #[test]
            #[$attr]
            fn $case() {
                if let Some(backend) = $crate::conformance::obtain($name, $ctor) {
                    if let Err(msg) = $crate::conformance::$case::<$t, _>(&backend, $tol) {
                        panic!("{} ({}): {msg}", stringify!($case), $name);
                    }
                }
            }
        )+
    };
    (@cases $name:expr, $t:ty, $ctor:expr, $tol:expr, $($case:ident),+) => {
        // A neutral attribute where nothing is to be ignored.
        $crate::conformance_suite!(@cases [allow(unused)] $name, $t, $ctor, $tol, $($case),+);
    };
}

/// The cases a `conformance_suite!` runs, by name (for docs and reports).
pub const CASES: &[&str] = &[
    "random_models_match_reference",
    "odd_sizes_match_reference",
    "wide_heads_match_reference",
    "permutation_equivariance",
    "causal_prefix_independence",
    "batch_independence_and_determinism",
    "empty_model_is_identity",
    "softmax_extreme_logits",
    "hardmax_ties_split_equally",
    "query_bias_selects_extremes",
    "rank_one_head_is_boltzmann",
    "feed_forward_hand_computed",
    "dimension_mismatch_is_an_error",
    "overflow_is_an_error",
];
