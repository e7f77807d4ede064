//! Convergence across precisions, bisection for the fewest bits, exact conversion and bad parameters.

#![allow(clippy::unwrap_used)]

use boltz_bigfloat::{fewest_bits, BigFloatBackend, BigReal, FfnEvaluation};
use boltz_core::conformance::{random_batch, random_model, RandomModelSpec};
use boltz_core::format::{self, Encoding, Rounding};
use boltz_core::rng::SeededRng;
use boltz_core::{
    Backend, Batch, Block, Error, ExactConvert, ExactFloat, FeedForward, Matrix, Memorization, Model, ModelInfo, Normalizer, Real,
    ReferenceBackend, Weight,
};

fn big_model(seed: u64, normalizer: Normalizer) -> (Model<BigReal>, Batch<BigReal>) {
    let mut rng = SeededRng::new(seed);
    let spec = RandomModelSpec {
        normalizer,
        causal: seed.is_multiple_of(2),
        query_bias: true,
        factor_rank: Some(1),
        ..RandomModelSpec::sized(4, 3, 2, 2, 6)
    };
    let m = random_model(&mut rng, &spec);
    let x = random_batch(&mut rng, 3, 7, 4);
    (m.convert().unwrap(), x.convert().unwrap())
}

/// Results at p and 2p bits agree to about p bits (relative to the output scale).
#[test]
fn results_converge_with_precision() {
    for (seed, normalizer) in [(1, Normalizer::Softmax), (2, Normalizer::Softmax), (3, Normalizer::Hardmax)] {
        let (model, x) = big_model(seed, normalizer);
        for p in [64u64, 100, 300, 1000] {
            let lo = BigFloatBackend::with_threads(p, 2).unwrap().run(&model, &x).unwrap();
            let hi = BigFloatBackend::with_threads(2 * p, 2).unwrap().run(&model, &x).unwrap();
            let mut worst = f64::NEG_INFINITY;
            for (a, b) in lo.as_slice().iter().zip(hi.as_slice()) {
                let diff = a.with_bits(2 * p).sub(b);
                if !diff.is_zero() {
                    worst = worst.max(diff.log2_abs());
                }
            }
            let scale = hi.as_slice().iter().map(|v| v.log2_abs()).fold(0.0f64, f64::max);
            // Agreement to p − 16 bits: a few dozen roundings per output, each ≤ 2^-p relative.
            assert!(worst <= scale - (p as f64 - 16.0), "seed {seed}, {p} bits: log2 |Δ| = {worst:.1}, log2 scale = {scale:.1}");
        }
    }
}

/// `z + (ReLU(z + B) − B)` with `B = 2^k`: exact arithmetic gives `2z`; with `p` bits it is exact iff
/// `z + B` fits, i.e. `p ≥ k + 11` for `z = m/1024` in `[0.5, 1)` with odd `m` present.
fn cancellation_model(k: i64) -> (Model<BigReal>, Batch<BigReal>, Batch<BigReal>) {
    let big = BigReal::from_exact(&ExactFloat::from_parts(false, vec![1], k));
    let one = BigReal::from_f64(1.0);
    let ffn = FeedForward {
        w1: Weight::Dense(Matrix::row_vector(vec![one.clone()])),
        b1: vec![big.clone()],
        w2: Weight::Dense(Matrix::column_vector(vec![one])),
        b2: vec![big.neg()],
    };
    let model = Model::new(1, vec![Block { attention: None, ffn: Some(ffn) }], ModelInfo::named("cancellation").with("k", k)).unwrap();
    let zs: Vec<f64> = [513.0, 700.0, 1001.0, 1023.0].iter().map(|m| m / 1024.0).collect();
    let x = Batch::new(1, zs.len(), 1, zs.iter().map(|&z| BigReal::from_f64(z)).collect()).unwrap();
    let y = Batch::new(1, zs.len(), 1, zs.iter().map(|&z| BigReal::from_f64(2.0 * z)).collect()).unwrap();
    (model, x, y)
}

#[test]
fn bisection_finds_the_fewest_bits() {
    // Needs more than f64: k = 80 → 91 bits. And f64 indeed fails on it.
    let (model, x, y) = cancellation_model(80);
    let exact = |out: &Batch<BigReal>| Memorization::measure(out, &y).map(|m| m.exact == m.tokens).unwrap_or(false);
    let search = fewest_bits(&model, &x, 24, 4096, 2, exact).unwrap();
    assert_eq!(search.fewest, Some(91), "{search:?}");
    assert_eq!(search.bisection, Some(91));
    assert!(search.monotone);
    assert_eq!(search.holds_at.last().map(|r| r[1]), Some(4096));
    // Bisection (≤ 14 forwards) plus the scan of 87..=95 (9, some already probed).
    assert!(search.probes.len() <= 14 + 9, "{}", search.probes.len());
    for bits in 87..=95 {
        assert!(search.probes.iter().any(|p| p.bits == bits), "{bits} not scanned");
    }
    assert!(search.probes.iter().all(|p| p.holds == (p.bits >= 91)), "{search:?}");
    let m64: Model<f64> = model.convert().unwrap();
    let y64 = ReferenceBackend.run(&m64, &x.convert().unwrap()).unwrap();
    assert!(Memorization::measure(&y64, &y.convert().unwrap()).unwrap().exact < 4, "f64 should fail on the k = 80 model");

    // Fits in f64: k = 30 → 41 bits.
    let (model, x, y) = cancellation_model(30);
    let exact = |out: &Batch<BigReal>| Memorization::measure(out, &y).map(|m| m.exact == m.tokens).unwrap_or(false);
    assert_eq!(fewest_bits(&model, &x, 24, 4096, 2, exact).unwrap().fewest, Some(41));

    // Never holds in range → None; holds at lo → lo.
    let never = fewest_bits(&model, &x, 24, 30, 1, |_| false).unwrap();
    assert_eq!((never.fewest, never.probes.len(), never.bisection), (None, 1, None));
    assert_eq!(fewest_bits(&model, &x, 24, 30, 1, |_| true).unwrap().fewest, Some(24));
    assert!(matches!(fewest_bits(&model, &x, 30, 24, 1, |_| true), Err(Error::InvalidParameter { .. })));
}

/// A predicate that is not monotone in the precision: `fewest` is where everything probed above holds,
/// and the islands below are reported in `holds_at`.
#[test]
fn non_monotone_predicates_are_reported_honestly() {
    let (model, x, _) = cancellation_model(30);
    let bits_of = |out: &Batch<BigReal>| out.as_slice()[0].mantissa_bits();
    // Holds at 35 and from 37 on; 36 fails (the shape seen on a grid dataset).
    let s = fewest_bits(&model, &x, 8, 100, 1, |out| bits_of(out) == 35 || bits_of(out) >= 37).unwrap();
    assert_eq!((s.bisection, s.fewest, s.monotone), (Some(37), Some(37), false), "{s:?}");
    assert_eq!(s.holds_at, vec![[35, 35], [37, 100]]);
    // Bisection lands on 35, but 38 fails: the scan above finds it and `fewest` moves to 39.
    let s = fewest_bits(&model, &x, 8, 100, 1, |out| bits_of(out) >= 35 && bits_of(out) != 38).unwrap();
    assert_eq!((s.bisection, s.fewest, s.monotone), (Some(35), Some(39), false), "{s:?}");
    assert_eq!(s.holds_at, vec![[35, 37], [39, 100]]);
}

#[test]
fn bad_precision_is_an_error() {
    for bits in [0u64, 1, (1 << 24) + 1, u64::MAX] {
        let err = BigFloatBackend::new(bits).unwrap_err();
        assert!(matches!(&err, Error::InvalidParameter { name, .. } if name == "precision"), "{bits}: {err}");
    }
    assert!(matches!(BigFloatBackend::with_threads(64, 0), Err(Error::InvalidParameter { .. })));
    let (model, x) = big_model(4, Normalizer::Softmax);
    let prepared = BigFloatBackend::with_threads(64, 1).unwrap().prepare(&model).unwrap();
    assert!(matches!(BigFloatBackend::with_threads(128, 1).unwrap().forward(&prepared, &x), Err(Error::InvalidParameter { .. })));
}

#[test]
fn conversion_from_f32_and_f64_is_lossless() {
    let mut rng = SeededRng::new(9);
    let spec = RandomModelSpec { normalizer: Normalizer::Hardmax, query_bias: true, ..RandomModelSpec::sized(3, 2, 1, 2, 3) };
    let m64 = random_model(&mut rng, &spec);
    let m32: Model<f32> = m64.convert().unwrap();
    assert_eq!(m64.convert::<BigReal>().unwrap().convert::<f64>().unwrap(), m64);
    assert_eq!(m32.convert::<BigReal>().unwrap().convert::<f32>().unwrap(), m32);
    let x = random_batch(&mut rng, 2, 3, 3);
    assert_eq!(x.convert::<BigReal>().unwrap().convert::<f64>().unwrap(), x);
}

#[test]
fn weights_beyond_f64_are_representable_and_stored_exactly() {
    // A 4096-bit weight 1 + 2^-4000 survives the exact format and changes results only at high precision.
    let w = BigReal::from_exact(&ExactFloat::from_parts(false, vec![1], 0).clone());
    let tiny = BigReal::from_exact(&ExactFloat::from_parts(false, vec![1], -4000));
    let heavy = w.with_bits(4096).add(&tiny.with_bits(4096));
    assert_eq!(heavy.mantissa_bits(), 4096);
    assert_eq!(heavy.to_exact().mantissa_bits(), 4001);
    let ffn = FeedForward {
        w1: Weight::Dense(Matrix::row_vector(vec![heavy.clone()])),
        b1: vec![BigReal::from_f64(-1.0)],
        w2: Weight::Dense(Matrix::column_vector(vec![BigReal::from_f64(1.0)])),
        b2: vec![BigReal::from_f64(0.0)],
    };
    let model = Model::new(1, vec![Block { attention: None, ffn: Some(ffn) }], ModelInfo::named("heavy")).unwrap();
    let path = std::env::temp_dir().join(format!("boltz-heavy-{}.exact.json", std::process::id()));
    format::save_model(&model, &path, Encoding::Exact).unwrap();
    let back = format::load_model::<BigReal>(&path, Rounding::Forbid).unwrap();
    assert_eq!(back, model);
    assert!(matches!(format::save_model(&model, &path.with_extension("st"), Encoding::F64), Err(Error::Inexact { .. })));
    assert!(matches!(format::load_model::<f64>(&path, Rounding::Forbid), Err(Error::Inexact { .. })));
    // x = 1: ReLU(heavy − 1) = 2^-4000 at 4096 bits, 0 at 53 bits.
    let x = Batch::new(1, 1, 1, vec![BigReal::from_f64(1.0)]).unwrap();
    let hi = BigFloatBackend::with_threads(4096, 1).unwrap().run(&back, &x).unwrap();
    let lo = BigFloatBackend::with_threads(53, 1).unwrap().run(&back, &x).unwrap();
    assert_eq!(hi.as_slice()[0].sub(&BigReal::from_f64(1.0)).log2_abs(), -4000.0);
    assert_eq!(lo.as_slice()[0], BigReal::from_f64(1.0));
}

/// FFNs with `W_1 = 1 wᵀ`: the faithful threshold evaluation is bit-identical to the term-by-term one (the
/// same FFN given with a dense `W_1`), the prefix-sum evaluation agrees to the precision, and both agree with
/// the f64 reference.
#[test]
fn threshold_ffn_matches_term_by_term() {
    let mut rng = SeededRng::new(21);
    let (d, q) = (3, 40);
    let w: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    let b1: Vec<f64> = (0..q).map(|_| rng.range(-2.0, 2.0)).collect();
    let w2 = Matrix::from_fn(d, q, |_, _| rng.normal());
    let b2: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    let ffn = |w1: Weight<f64>| FeedForward { w1, b1: b1.clone(), w2: Weight::Dense(w2.clone()), b2: b2.clone() };
    let model = |w1| Model::new(d, vec![Block { attention: None, ffn: Some(ffn(w1)) }], ModelInfo::named("t")).unwrap();
    let factored = model(Weight::rank_one(vec![1.0; q], w.clone()));
    let dense = model(Weight::Dense(Matrix::from_fn(q, d, |_, c| w[c])));
    // Inputs include tokens exactly on a threshold (s = −b1_j) to exercise the boundary.
    let mut x = random_batch(&mut rng, 4, 9, d).into_vec();
    x[0] = -b1[3] / w[0];
    x[1] = 0.0;
    x[2] = 0.0;
    let x = Batch::new(4, 9, d, x).unwrap();
    let y_ref = ReferenceBackend.run(&dense, &x).unwrap();
    for bits in [24u64, 53, 300] {
        let faithful = BigFloatBackend::with_threads(bits, 2).unwrap();
        let prefix = BigFloatBackend::with_threads(bits, 2).unwrap().with_ffn_evaluation(FfnEvaluation::PrefixSums);
        let xb: Batch<BigReal> = x.convert().unwrap();
        let (mf, md) = (factored.convert().unwrap(), dense.convert().unwrap());
        let yf = faithful.run(&mf, &xb).unwrap();
        assert_eq!(yf, faithful.run(&md, &xb).unwrap(), "{bits} bits: faithful threshold path must equal the term-by-term sum");
        let yp = prefix.run(&mf, &xb).unwrap();
        for ((a, b), r) in yp.as_slice().iter().zip(yf.as_slice()).zip(y_ref.as_slice()) {
            let diff = a.sub(b).abs();
            assert!(diff.is_zero() || diff.log2_abs() < 10.0 - bits as f64, "{bits} bits: {a} vs {b}");
            if bits >= 53 {
                assert!((b.to_f64() - r).abs() < 1e-12 * r.abs().max(1.0), "{b} vs reference {r}");
            }
        }
    }
}
