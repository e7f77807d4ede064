//! `boltz bench`: time a workload of the shared table on a backend.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use boltz_core::{workloads, Backend, Batch};
use boltz_harness::backends::{self, Job};
use boltz_harness::meta::RunMeta;
use boltz_harness::resources::{self, MemoryBudget};
use serde_json::json;

use crate::cli::{threads, BenchArgs};

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if available.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Refuses a batch whose forward would not fit the memory available (or `max_memory`).
pub(crate) fn check_batch_memory(workload: &workloads::Workload, batch: usize, max_memory: Option<u64>) -> Result<()> {
    MemoryBudget::new(max_memory).check(
        &format!("--batch {batch} of the {} workload (n = {}, d = {})", workload.name, workload.n, workload.d),
        resources::forward_bytes(batch, workload.n, workload.d, workload.d, 16),
    )
}

/// Times `repeats` forwards of a workload after one warm-up forward (seconds each).
pub(crate) struct TimeForwards<'a> {
    model: &'a boltz_core::Model<f64>,
    x: &'a Batch<f64>,
    repeats: usize,
}

impl Job for TimeForwards<'_> {
    type Output = Vec<f64>;
    fn run<T: boltz_core::Real, B: Backend<T>>(self, backend: &B) -> Result<Self::Output> {
        let m: boltz_core::Model<T> = self.model.convert()?;
        let xt: Batch<T> = self.x.convert()?;
        let prepared = backend.prepare(&m)?;
        backend.forward(&prepared, &xt)?;
        (0..self.repeats)
            .map(|_| {
                let t = Instant::now();
                backend.forward(&prepared, &xt)?;
                Ok(t.elapsed().as_secs_f64())
            })
            .collect()
    }
}

pub(crate) fn bench(a: &BenchArgs) -> Result<bool> {
    let threads = threads(a.threads)?;
    let workload = workloads::find(&a.workload)?;
    if a.batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    if a.repeats == 0 {
        bail!("--repeats must be at least 1 (the median of no timings is undefined)");
    }
    backends::check(a.backend, a.precision)?;
    let batch = a.batch.unwrap_or(workload.batch);
    check_batch_memory(&workload, batch, a.max_memory)?;
    let (model, x) = workload.build(a.batch)?;
    let flops = workloads::flops(&model, x.batch(), x.len());
    let times = backends::dispatch(a.backend, a.precision, threads, TimeForwards { model: &model, x: &x, repeats: a.repeats })?;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let record = json!({
        "command": "bench",
        "meta": RunMeta::collect(threads),
        "workload": workload.name,
        "description": workload.description,
        "batch": x.batch(), "n": x.len(), "d": x.dim(),
        "args": a,
        "backend": a.backend,
        "precision": a.precision,
        "threads": threads,
        "flops_per_forward": flops,
        "seconds": times,
        "median_ms": median * 1e3,
        "gflops": flops / median / 1e9,
        "peak_rss_bytes": peak_rss_bytes(),
    });
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        outln!(
            "{} on {} {}, {} threads: {:.3} ms per forward (median of {}), {:.2} GFLOP/s, peak RSS {} MiB",
            workload.name,
            a.backend.name(),
            a.precision,
            threads,
            median * 1e3,
            times.len(),
            flops / median / 1e9,
            peak_rss_bytes().map_or("?".into(), |b| (b >> 20).to_string())
        );
    }
    Ok(true)
}
