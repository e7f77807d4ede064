//! Records how the arbitrary-precision backend's cost grows with precision:
//! single `exp`/`mul` from 1 024 to 1 048 576 bits, and the forward of a memorizer-shaped one-layer model
//! (rank-1 tied attention + a token-wise FFN of width nN, the shape of Corollary 1) for N = 100, n = 8, d = 4.
//!
//! With `--memorizer DIR --bits P` it also times one forward of an exported model (`boltz memorize
//! --export DIR`: `model.exact.json` + `dataset.safetensors`) at P bits on one thread and on all cores, with
//! its memorization: the Rust side of `scripts/bigfloat-speed.sh`, whose Python side runs the same model
//! in a plain mpmath loop.
//!
//! `cargo run --release -p boltz-bigfloat --example speed -- [OUT.json] [--quick] [--memorizer DIR --bits P]`

use std::time::Instant;

use rug::Assign;

use boltz_bigfloat::{BigFloatBackend, BigReal, FfnEvaluation};
use boltz_core::{Attention, AttentionHead, Backend, Block, Dataset, DatasetSpec, FeedForward, Model, ModelInfo, Normalizer, Real, Weight};

fn time<R>(reps: usize, mut f: impl FnMut() -> R) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    start.elapsed().as_secs_f64() / reps as f64
}

/// Repetitions of the exported memorizer's forward (prepare, forward, decoding); the median is reported.
const FORWARD_REPEATS: usize = 5;

/// Rank-1 tied attention (`W_K = W_V = vᵀ`, `W_Q = λ vᵀ`, `W_O = c·u`) followed by an FFN
/// `Σ_j c_j ReLU(wᵀz − b_j)` in coordinate 0 with `q = nN` sorted thresholds: the parameter shapes and
/// sparsity of the one-layer memorizer, with generic constants (timing only).
fn memorizer_shaped(d: usize, q: usize, lambda: f64) -> Model<BigReal> {
    let r = |x: f64| BigReal::from_f64(x);
    let v: Vec<BigReal> = (0..d).map(|i| r(if i == 0 { 0.8 } else { 0.6 / (d as f64 - 1.0).sqrt() })).collect();
    let u: Vec<BigReal> = (0..d).map(|i| r(if i == 0 { 1.0 } else { 0.0 })).collect();
    let head = AttentionHead {
        w_q: Weight::rank_one(vec![r(lambda)], v.clone()),
        w_k: Weight::rank_one(vec![r(1.0)], v.clone()),
        w_v: Weight::rank_one(vec![r(1.0)], v.clone()),
        w_o: Weight::rank_one(u.clone(), vec![r(0.0375)]),
        b_q: None,
    };
    // Full-length coefficients (1/3 to 2^17 bits): products with them cost a full multiplication.
    let third = r(1.0).with_bits(1 << 17).div(&r(3.0));
    let ffn = FeedForward {
        w1: Weight::rank_one(vec![r(1.0); q], v),
        b1: (0..q).map(|j| r(-3.0 + 6.0 * j as f64 / q as f64)).collect(),
        w2: Weight::rank_one(u, (0..q).map(|j| third.mul(&r(1.0 + (j % 7) as f64))).collect()),
        b2: vec![r(0.0); d],
    };
    let blocks =
        vec![Block { attention: Some(Attention { heads: vec![head], normalizer: Normalizer::Softmax, causal: false }), ffn: Some(ffn) }];
    Model::new(d, blocks, ModelInfo::named("memorizer-shaped").with("lambda", lambda).with("q", q)).expect("well-formed")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value_of = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let memorizer_dir = value_of("--memorizer");
    let memorizer_bits: u64 = value_of("--bits").map(|b| b.parse()).transpose()?.unwrap_or(2505);
    let flag_values: Vec<String> = [value_of("--memorizer"), value_of("--bits")].into_iter().flatten().collect();
    let out = args
        .iter()
        .find(|a| !a.starts_with("--") && !flag_values.contains(a))
        .cloned()
        .unwrap_or_else(|| "results/bigfloat/speed.json".into());
    let threads = 2;

    let mut ops = Vec::new();
    let op_bits: &[u64] = if quick { &[1024, 16384] } else { &[1024, 4096, 16384, 65536, 262144, 1048576] };
    for &bits in op_bits {
        let x = BigReal::from_f64(-0.7371).with_bits(bits);
        // A full-length mantissa (1/3 to `bits` bits), so that mul costs what a generic product costs.
        let y = BigReal::from_f64(1.0).with_bits(bits).div(&BigReal::from_f64(3.0));
        let reps = (4_000_000 / bits).clamp(1, 200) as usize;
        let t_exp = time(reps.div_ceil(8).max(1), || x.exp());
        let t_mul = time(reps * 10, || y.mul(&y));
        // MPFR itself, in place into a preallocated destination: the floor the backend's operations (which
        // allocate their result) are measured against.
        let (rx, ry) = (x.as_float().clone(), y.as_float().clone());
        let mut z = rug::Float::new(bits as u32);
        let t_exp_mpfr = time(reps.div_ceil(8).max(1), || z.assign(rx.exp_ref()));
        let t_mul_mpfr = time(reps * 10, || z.assign(&ry * &ry));
        println!(
            "bits {bits:>8}: exp {t_exp:.3e} s ({:.2}x raw MPFR), mul {t_mul:.3e} s ({:.2}x raw MPFR)",
            t_exp / t_exp_mpfr,
            t_mul / t_mul_mpfr
        );
        ops.push(serde_json::json!({
            "bits": bits, "exp_seconds": t_exp, "mul_seconds": t_mul,
            "mpfr_in_place_exp_seconds": t_exp_mpfr, "mpfr_in_place_mul_seconds": t_mul_mpfr,
            "exp_ratio_backend_over_mpfr": t_exp / t_exp_mpfr, "mul_ratio_backend_over_mpfr": t_mul / t_mul_mpfr,
        }));
    }

    let spec = DatasetSpec { sequences: 100, length: 8, dim: 4, vocab: 16, seed: 3, ..Default::default() };
    let data = Dataset::<f64>::generate(&spec)?;
    let inputs = data.inputs.convert::<BigReal>()?;
    let q = spec.sequences * spec.length;
    let model = memorizer_shaped(spec.dim, q, 50.0);
    let mut forwards = Vec::new();
    let fw_bits: &[u64] = if quick { &[1024] } else { &[1024, 4096, 16384, 65536] };
    for &bits in fw_bits {
        for mode in [FfnEvaluation::Faithful, FfnEvaluation::PrefixSums] {
            let backend = BigFloatBackend::with_threads(bits, threads)?.with_ffn_evaluation(mode);
            let prepared = backend.prepare(&model)?;
            // At 65 536 bits run a tenth of the sequences and scale (an upper bound: fewer sequences reuse
            // fewer cached exponentials).
            let n_seq = if bits > 20000 { 10 } else { spec.sequences };
            let batch = inputs.slice(0..n_seq)?;
            let start = Instant::now();
            backend.forward(&prepared, &batch)?;
            let secs = start.elapsed().as_secs_f64();
            let full = secs * spec.sequences as f64 / n_seq as f64;
            println!("forward N={n_seq} n=8 d=4 q={q} at {bits} bits on {threads} threads, FFN {mode:?}: {secs:.2} s (scaled to N=100, an upper bound: {full:.2} s)");
            forwards.push(serde_json::json!({ "bits": bits, "ffn_evaluation": format!("{mode:?}"), "sequences_run": n_seq, "seconds": secs, "scaled_to_N100_upper_bound": full }));
        }
    }

    let mut memorizer = serde_json::Value::Null;
    if let Some(dir) = &memorizer_dir {
        let dir = std::path::Path::new(dir);
        let model: Model<BigReal> = boltz_core::format::load_model(&dir.join("model.exact.json"), boltz_core::format::Rounding::Forbid)?;
        let data = boltz_core::format::load_dataset::<f64>(&dir.join("dataset.safetensors"), boltz_core::format::Rounding::Forbid)?;
        let (x, y) = (data.inputs.convert::<BigReal>()?, data.targets.convert::<BigReal>()?);
        let mut runs = Vec::new();
        for t in [1, threads] {
            let backend = BigFloatBackend::with_threads(memorizer_bits, t)?;
            // prepare + forward + decoding, repeated; the median is the measurement (the mpmath side uses the
            // same protocol and repetitions).
            let mut all = Vec::with_capacity(FORWARD_REPEATS);
            let mut memorization = None;
            for _ in 0..FORWARD_REPEATS {
                let start = Instant::now();
                let prepared = backend.prepare(&model)?;
                let out = backend.forward(&prepared, &x)?;
                let m = boltz_core::Memorization::measure(&out, &y)?;
                all.push(start.elapsed().as_secs_f64());
                memorization = Some(m);
            }
            let m = memorization.ok_or("no forward ran")?;
            let mut sorted = all.clone();
            sorted.sort_by(f64::total_cmp);
            let secs = sorted[sorted.len() / 2];
            println!("memorizer forward at {memorizer_bits} bits on {t} thread(s): median {secs:.3} s of {FORWARD_REPEATS}, {}/{} tokens decoded", m.decoded, m.tokens);
            runs.push(serde_json::json!({ "threads": t, "seconds": secs, "seconds_all": all, "decoded": m.decoded, "tokens": m.tokens }));
        }
        memorizer = serde_json::json!({
            "model": model.info().construction,
            "policy": model.info().params.get("policy"),
            "N": data.inputs.batch(), "n": data.inputs.len(), "d": data.inputs.dim(),
            "ffn_width": model.blocks().iter().filter_map(|b| b.ffn.as_ref()).map(FeedForward::hidden).sum::<usize>(),
            "bits": memorizer_bits,
            "repeats": FORWARD_REPEATS,
            "runs": runs,
        });
    }

    let record = serde_json::json!({
        "experiment": "bigfloat-speed",
        "machine": { "cpus": boltz_cpu::threads::all_cores(), "os": std::env::consts::OS, "arch": std::env::consts::ARCH },
        "threads": threads,
        "library": boltz_bigfloat::library(),
        "ops": ops,
        "memorizer_shaped_forward": { "N": spec.sequences, "n": spec.length, "d": spec.dim, "vocab": spec.vocab, "ffn_width": q, "runs": forwards },
        "memorizer_forward": memorizer,
    });
    boltz_core::format::write_atomic(std::path::Path::new(&out), serde_json::to_string_pretty(&record)?.as_bytes())?;
    println!("wrote {out}");
    Ok(())
}
