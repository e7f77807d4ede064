//! `boltz approximate`: FF∘SA∘FF approximators of a target (Proposition 1) and their L² error.

use anyhow::{Context, Result};
use boltz_construct::one_layer::approximator::{Approximator, Target};
use boltz_lab::meta::write_json;
use boltz_lab::records::{ApproximateRecord, RecordHead};
use boltz_lab::resources::{self, MemoryBudget};

use crate::cli::{threads, ApproximateArgs, TargetArg};
use crate::commands::check_writable_file;

pub(crate) fn approximate(a: &ApproximateArgs) -> Result<bool> {
    let threads = threads(a.threads)?;
    let target = match a.target {
        TargetArg::ProductMean => Target::ProductMean,
        TargetArg::SoftmaxPool => Target::SoftmaxPool,
    };
    Approximator::check_samples(a.samples).context("--samples")?;
    for &cells in &a.cells {
        Approximator::check_size(a.length, a.dim, cells, a.samples).with_context(|| format!("--cells {cells}"))?;
    }
    MemoryBudget::new(a.max_memory).check(
        &format!("--samples {} --length {} --dim {}", a.samples, a.length, a.dim),
        resources::approximate_bytes(a.samples, a.length, a.dim),
    )?;
    if let Some(out) = &a.out {
        check_writable_file(out, "--out")?;
    }
    let mut rows = Vec::new();
    for &cells in &a.cells {
        let ap =
            Approximator::build(target, a.length, a.dim, cells, a.samples, a.seed, threads).with_context(|| format!("cells = {cells}"))?;
        rows.push(ap.report);
    }
    let record = ApproximateRecord { head: RecordHead::new("approximate", threads, serde_json::to_value(a)?), rows };
    if let Some(out) = &a.out {
        write_json(out, &record)?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        outln!("FF∘SA∘FF approximator of {} (n = {}, d = {})", target.as_str(), a.length, a.dim);
        outln!("{:>8} {:>12} {:>12} {:>10} {:>8}", "delta", "L2 error", "f̄ floor", "params", "bits");
        for r in &record.rows {
            outln!("{:>8.4} {:>12.4e} {:>12.4e} {:>10} {:>8}", r.delta, r.l2_error, r.l2_error_piecewise_constant, r.params.dense, r.bits);
        }
    }
    Ok(record.rows.iter().all(|r| r.l2_error.is_finite()))
}
