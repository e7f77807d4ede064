//! `boltz memorize`: build a construction on a generated dataset, verify it, run it on a backend.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use boltz_construct::deep::bit_extraction::Task;
use boltz_core::DatasetSpec;
use boltz_lab::export::{check_export_dir, export};
use boltz_lab::meta::write_json;
use boltz_lab::records::{BuildFields, MemorizeRecord, RecordHead};
use boltz_lab::request::{DataInput, MemorizeParams, MemorizeRequest};

use crate::cli::MemorizeArgs;
use crate::commands::check_writable_file;

/// The request `boltz memorize` makes of the lab, from its arguments.
fn request(a: &MemorizeArgs) -> Result<MemorizeRequest> {
    let data = match &a.dataset {
        Some(path) => DataInput::File { path: path.clone(), labels: a.labels.clone(), targets: a.targets.clone() },
        None => DataInput::Generate(DatasetSpec {
            sequences: a.sequences,
            length: a.length,
            dim: a.dim,
            vocab: a.vocab,
            seed: a.seed,
            vocab_kind: a.vocab_kind,
            ..Default::default()
        }),
    };
    MemorizeParams {
        data,
        construction: a.construction()?,
        seed: a.seed,
        candidates: a.candidates,
        threads: a.threads,
        backend: a.backend,
        precision: a.precision,
        max_memory: a.max_memory,
        max_seconds: a.max_time,
    }
    .check()
}

pub(crate) fn memorize(a: &MemorizeArgs) -> Result<bool> {
    // Everything that can be refused is refused before the dataset is generated or a model built.
    let req = request(a)?;
    if let Some(out) = &a.out {
        check_writable_file(out, "--out")?;
    }
    if let Some(dir) = &a.export {
        check_export_dir(dir, "--export")?;
    }
    let threads = req.options.threads;
    let clock = Instant::now();
    let stage = |what: std::fmt::Arguments<'_>| errln!("[{:>7.1}s] {what}", clock.elapsed().as_secs_f64());
    if req.generates() {
        stage(format_args!("generating the dataset (N = {}, n = {}, d = {}, |V| = {})", a.sequences, a.length, a.dim, a.vocab));
    }
    if a.task == Task::NextToken {
        stage(format_args!("next-token task: every position of a sequence gets its last position's target"));
    }
    let data = req.dataset()?;
    let [big_n, n, d] = data.inputs.shape();
    let vocab = boltz_core::Vocabulary::of(&data.inputs).len();
    let dataset_record = req.dataset_record(&data)?;
    stage(format_args!("building the {} construction", a.construction));
    let built = crate::progress::watched(|| req.build(&data))?;
    stage(format_args!("built: {} bits, exact in arbitrary precision: {}", built.bits, built.exact.is_perfect()));
    let precision = req.target_for(&built).precision;
    stage(format_args!("running on {} at {precision}", a.backend.name()));
    let mut run = crate::progress::watched(|| req.run(&built, &data));
    if !a.no_bisect {
        if built.fewest_bits.is_none() {
            stage(format_args!("searching the fewest bits for exact memorization (8..={} bits; each probe is a forward)", built.bits));
        }
        let probes = std::sync::atomic::AtomicUsize::new(0);
        run.fewest_bits = Some(crate::progress::watched(|| {
            req.fewest_bits(&built, &data, |bits, check| {
                let k = probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                stage(format_args!("  probe {k}: {bits} bits {check}"));
            })
        })?);
    }
    let exported = match &a.export {
        Some(dir) => export(dir, &built.model, &data)?,
        None => Vec::new(),
    };
    let layers = built.model.layer_count();
    let params = built.model.param_count();
    let ranks = boltz_lab::rank::RankReport::of(&built.model);
    let record = MemorizeRecord {
        head: RecordHead::new("memorize", threads, serde_json::to_value(a)?),
        dataset: dataset_record,
        built: BuildFields::of(&built, a.construction),
        run: run.clone(),
        attention_rank: ranks.to_json(),
        exported: exported.clone(),
    };
    if let Some(out) = &a.out {
        write_json(out, &record)?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        match &a.dataset {
            Some(path) => outln!("{}: N = {big_n}, n = {n}, d = {d}, |V| = {vocab}", path.display()),
            None => outln!("N = {big_n}, n = {n}, d = {d}, |V| = {vocab}, seed {}", a.seed),
        }
        for line in &built.summary {
            outln!("{line}");
        }
        outln!(
            "  {} attention + {} FFN layers; {} parameters dense, {} factored",
            layers.attention,
            layers.ffn,
            params.dense,
            params.factored
        );
        outln!("  built at {} bits; exact in arbitrary precision: {}", built.bits, built.exact.is_perfect());
        if let Some(r) = ranks.summary().filter(|r| r.attention_heads > 0) {
            outln!(
                "  attention products (SVD, LAPACK): rank W_Kᵀ W_Q ≤ {}, rank W_Vᵀ W_Oᵀ ≤ {} over {} heads",
                r.rank_key_query_max,
                r.rank_value_output_max,
                r.attention_heads
            );
        }
        match (&run.memorization, &run.run_error) {
            (Some(mem), _) => outln!(
                "  {} at {}: {}/{} tokens decoded ({:.1}%), max |error| 1e{:.2}, forward {:.3}s",
                a.backend.name(),
                precision,
                mem.decoded,
                mem.tokens,
                100.0 * mem.accuracy,
                mem.log10_max_abs_error,
                run.forward_seconds.unwrap_or(0.0)
            ),
            (None, Some(e)) => outln!("  {} at {precision}: could not run: {e}", a.backend.name()),
            _ => {}
        }
        if let Some(b) = &run.fewest_bits {
            match b.fewest {
                Some(f) => {
                    outln!("  fewest bits for exact memorization: {f} (searched {}..={}, {} probes)", b.lo, b.hi, b.probes.len());
                    if let Some(audit) = &b.audit {
                        outln!("  checked by the {audit}");
                    }
                    if !b.monotone {
                        outln!("  not monotone in the precision: holds at {:?} (probed ranges)", b.holds_at);
                    }
                }
                None => outln!("  not exact even at {} bits", b.hi),
            }
        }
        for f in &exported {
            outln!("  exported {}", f.display());
        }
    }
    if let Some(e) = run.run_error {
        // The record is written (it says why); the exit code must not claim the requested run happened.
        bail!("--backend {} at {precision} did not run: {e}", a.backend.name());
    }
    Ok(built.exact.is_perfect())
}
