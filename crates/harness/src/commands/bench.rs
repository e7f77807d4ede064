//! `boltz bench`: time a workload of the shared table on a backend.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use boltz_core::{workloads, Backend, Batch};
use boltz_harness::backends::{self, BackendKind, Job, Precision};
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
    if a.repeats == 0 {
        bail!("--repeats must be at least 1 (the median of no timings is undefined)");
    }
    if a.all {
        return bench_all(a);
    }
    let (&[backend], &[precision]) = (a.backend.as_slice(), a.precision.as_slice()) else {
        bail!("--backend and --precision take one value each without --all (a list needs --all)");
    };
    let threads = threads(a.threads)?;
    let workload = workloads::find(a.workload.as_deref().context("--workload NAME or --all is needed")?)?;
    if a.batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    backends::check(backend, precision)?;
    let batch = a.batch.unwrap_or(workload.batch);
    check_batch_memory(&workload, batch, a.max_memory)?;
    let (model, x) = workload.build(a.batch)?;
    let flops = workloads::flops(&model, x.batch(), x.len());
    let times = backends::dispatch(backend, precision, threads, TimeForwards { model: &model, x: &x, repeats: a.repeats })?;
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
        "backend": backend,
        "precision": precision,
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
            backend.name(),
            precision,
            threads,
            median * 1e3,
            times.len(),
            flops / median / 1e9,
            peak_rss_bytes().map_or("?".into(), |b| (b >> 20).to_string())
        );
    }
    Ok(true)
}

/// The values of `v` in their first order, each once.
fn unique<T: PartialEq + Copy>(v: &[T]) -> Vec<T> {
    v.iter().fold(Vec::new(), |mut acc, x| {
        if !acc.contains(x) {
            acc.push(*x);
        }
        acc
    })
}

/// `bench --all`: every workload × backend × precision at the benches' batch, each timed in a process of
/// its own (`boltz bench --workload … --json`), so that each row's `peak_rss_bytes` is that combination's
/// peak and not the largest so far; the rows keep everything the single command reports except its
/// `meta`, which the whole document carries once.
fn bench_all(a: &BenchArgs) -> Result<bool> {
    let threads = threads(a.threads)?;
    if a.batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    let (kinds, precisions) = (unique(&a.backend), unique(&a.precision));
    for &b in &kinds {
        for &p in &precisions {
            backends::check(b, p)?;
        }
        backends::probe(b).with_context(|| format!("--backend {} cannot run here", b.name()))?;
    }
    let exe = std::env::current_exe().context("finding the boltz binary to run each bench in")?;
    let mut combos: Vec<(&workloads::Workload, BackendKind, Precision)> = Vec::new();
    for w in &workloads::WORKLOADS {
        for &b in &kinds {
            combos.extend(precisions.iter().map(|&p| (w, b, p)));
        }
    }
    let mut rows = Vec::with_capacity(combos.len());
    for (i, (w, b, p)) in combos.iter().enumerate() {
        let batch = a.batch.unwrap_or(w.bench_batch);
        errln!("[{}/{}] {} on {} {} (batch {batch}, {threads} threads)", i + 1, combos.len(), w.name, b.name(), p);
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "--workload", w.name, "--backend", b.name(), "--precision", &p.to_string(), "--json"]);
        cmd.args(["--threads", &threads.to_string(), "--repeats", &a.repeats.to_string(), "--batch", &batch.to_string()]);
        if let Some(m) = a.max_memory {
            cmd.args(["--max-memory", &m.to_string()]);
        }
        let out = cmd.stderr(std::process::Stdio::inherit()).output().context("starting a bench process")?;
        if !out.status.success() {
            bail!("{} on {} {}: the bench process failed ({}); see its message above", w.name, b.name(), p, out.status);
        }
        let mut row: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading a bench process's JSON")?;
        if let Some(obj) = row.as_object_mut() {
            obj.remove("meta");
            obj.remove("command");
        }
        rows.push(row);
    }
    if a.json {
        let doc = json!({
            "command": "bench --all",
            "what": "every workload x backend x precision at the benches' batch; each row timed in its own process (median of `repeats` forwards after one warm-up; peak_rss_bytes: that process's peak resident memory, including the binary, the model and the batch)",
            "meta": RunMeta::collect(threads),
            "args": a,
            "rows": rows,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        outln!(
            "{:<12} {:<9} {:<9} {:>6} {:>12} {:>10} {:>10}",
            "workload",
            "backend",
            "precision",
            "batch",
            "median ms",
            "GFLOP/s",
            "peak MiB"
        );
        for r in &rows {
            outln!(
                "{:<12} {:<9} {:<9} {:>6} {:>12.3} {:>10.2} {:>10}",
                r["workload"].as_str().unwrap_or("?"),
                r["backend"].as_str().unwrap_or("?"),
                r["precision"].as_str().unwrap_or("?"),
                r["batch"],
                r["median_ms"].as_f64().unwrap_or(f64::NAN),
                r["gflops"].as_f64().unwrap_or(f64::NAN),
                r["peak_rss_bytes"].as_u64().map_or("?".into(), |b| (b >> 20).to_string())
            );
        }
    }
    Ok(true)
}
