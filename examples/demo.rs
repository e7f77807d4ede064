//! A small end-to-end demo of the foundation: generate a tokenwise-separated dataset, build a model,
//! run it on the reference backend in f64 and f32, and write the model, the dataset and a JSON summary.
//!
//! `cargo run --release --example demo -- [OUT_DIR]` (default `results/demo`). The constructions themselves
//! run through `boltz memorize` and `boltz reproduce`.

use std::path::PathBuf;

use boltzformer::core::conformance::{random_model, RandomModelSpec};
use boltzformer::core::format::{self, Encoding};
use boltzformer::core::rng::SeededRng;
use boltzformer::core::{Backend, DataReport, Dataset, DatasetSpec, Normalizer, ReferenceBackend};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "results/demo".into()));
    let spec = DatasetSpec { sequences: 64, length: 8, dim: 4, vocab: 24, seed: 2024, ..Default::default() };
    let data = Dataset::<f64>::generate(&spec)?;
    let report = DataReport::analyze(&data.inputs, Some(&data.targets));
    let model_spec = RandomModelSpec {
        dim: spec.dim,
        blocks: 2,
        heads: 1,
        head_size: 1,
        hidden: 16,
        normalizer: Normalizer::Softmax,
        causal: false,
        query_bias: false,
        factor_rank: Some(1),
    };
    let model = random_model(&mut SeededRng::new(spec.seed), &model_spec);
    let y64 = ReferenceBackend.run(&model, &data.inputs)?;
    let y32 = ReferenceBackend.run(&model.convert::<f32>()?, &data.inputs.convert::<f32>()?)?;
    let max_diff = y64.as_slice().iter().zip(y32.as_slice()).map(|(a, b)| (a - f64::from(*b)).abs()).fold(0.0, f64::max);

    format::save_model(&model, &out.join("model.safetensors"), Encoding::F64)?;
    format::save_dataset(&data, &out.join("dataset.safetensors"), Encoding::F64)?;
    let summary = serde_json::json!({
        "dataset": { "spec": spec, "report": report, "fingerprint": format!("{:016x}", data.fingerprint()) },
        "model": { "params": model.param_count(), "layers": model.layer_count(), "info": model.info() },
        "forward": { "backend": Backend::<f64>::device_info(&ReferenceBackend), "max_abs_f32_vs_f64": max_diff },
    });
    format::write_atomic(&out.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!(
        "dataset: N={} n={} d={} |V|={} r in [{:.3}, {:.3}] eps={:.3}",
        report.sequences, report.length, report.dim, report.vocab_size, report.r_min, report.r_max, report.eps
    );
    println!(
        "model: {} blocks, params dense {} / factored {}",
        model.layer_count().blocks,
        model.param_count().dense,
        model.param_count().factored
    );
    println!("reference forward f32 vs f64: max |Δ| = {max_diff:.3e}");
    println!("wrote {}", out.display());
    Ok(())
}
