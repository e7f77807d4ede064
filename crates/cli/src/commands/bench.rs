//! `boltz bench`: time a workload of the shared table on a backend.

use anyhow::{bail, Context, Result};
use boltz_core::workloads;
use boltz_lab::backends::{self, BackendKind, Precision};
use boltz_lab::meta::{MachineCeiling, RunMeta};
use boltz_lab::records::{BenchAllRecord, BenchRecord, RECORD_SCHEMA_VERSION};
use boltz_lab::resources::{self, MemoryBudget};
use boltz_lab::timing::{Spread, TimeForwards};

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

pub(crate) fn bench(a: &BenchArgs) -> Result<bool> {
    if a.repeats == 0 {
        bail!("--repeats must be at least 1 (the median of no timings is undefined)");
    }
    if a.all {
        return bench_all(a);
    }
    if a.csv.is_some() {
        bail!("--csv writes the comparison table of --all; a single bench prints one line (or --json)");
    }
    let (&[backend], &[precision]) = (a.backend.as_slice(), a.precision.as_slice()) else {
        bail!("--backend and --precision take one value each without --all (a list needs --all)");
    };
    if a.threads.len() > 1 {
        bail!("--threads takes one value without --all (a list needs --all)");
    }
    let threads = threads(a.threads.first().copied())?;
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
    let Spread { median, min, max } = Spread::of(&times);
    // Read before the ceiling is measured: its triad arrays would otherwise count as the workload's memory.
    let peak_rss = peak_rss_bytes();
    let gflops = flops / median / 1e9;
    let ceiling = (!a.no_ceiling).then(|| MachineCeiling::measure(threads));
    let percent_of_peak = ceiling.as_ref().and_then(|c| c.percent_of_peak(backend, precision, gflops));
    let record = BenchRecord {
        schema_version: RECORD_SCHEMA_VERSION,
        command: "bench".into(),
        meta: Some(RunMeta::collect(threads)),
        workload: workload.name.to_string(),
        description: workload.description.to_string(),
        batch: x.batch(),
        n: x.len(),
        d: x.dim(),
        args: serde_json::to_value(a)?,
        backend,
        precision,
        threads,
        flops_per_forward: flops,
        seconds: times.clone(),
        median_ms: median * 1e3,
        min_ms: min * 1e3,
        max_ms: max * 1e3,
        gflops,
        peak_rss_bytes: peak_rss,
        ceiling: ceiling.clone(),
        percent_of_peak,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        let of_peak = match (&ceiling, percent_of_peak) {
            (Some(c), Some(p)) => {
                format!(" = {p:.0} % of the {} FMA peak ({:.0} GFLOP/s)", c.isa, c.peak_gflops(precision).unwrap_or(f64::NAN))
            }
            _ => String::new(),
        };
        outln!(
            "{} on {} {}, {} threads: {:.3} ms per forward (median of {}), {:.2} GFLOP/s{of_peak}, peak RSS {} MiB",
            workload.name,
            backend.name(),
            precision,
            threads,
            median * 1e3,
            times.len(),
            gflops,
            peak_rss.map_or("?".into(), |b| (b >> 20).to_string())
        );
    }
    Ok(true)
}

/// `boltz ceiling`: the machine's ceilings at each thread count (default: 1 and all cores).
pub(crate) fn ceiling(thread_counts: &[usize], json: bool) -> Result<bool> {
    let counts: Vec<usize> = if thread_counts.is_empty() {
        unique(&[1, boltz_core::threads::all_cores()])
    } else {
        if thread_counts.contains(&0) {
            bail!("--threads takes counts of at least 1");
        }
        unique(thread_counts)
    };
    let ceilings: Vec<MachineCeiling> = counts.iter().map(|&t| MachineCeiling::measure(t)).collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&ceilings)?);
    } else {
        for c in &ceilings {
            outln!(
                "{} thread(s), {}: FMA peak f32 {:.1} GFLOP/s, f64 {:.1} GFLOP/s; triad {:.1} GB/s",
                c.threads,
                c.isa,
                c.fma_peak_gflops_f32,
                c.fma_peak_gflops_f64,
                c.triad_gb_per_s
            );
        }
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

/// `bench --all`: every workload × backend × precision × threads at the benches' batch, each timed in a
/// process of its own (`boltz bench --workload … --json`), so that each row's `peak_rss_bytes` is that
/// combination's peak and not the largest so far; the rows keep everything the single command reports
/// except its `meta`, which the whole document carries once. Without --json: the comparison table.
fn bench_all(a: &BenchArgs) -> Result<bool> {
    let thread_counts: Vec<usize> = if a.threads.is_empty() {
        vec![threads(None)?]
    } else {
        unique(&a.threads).into_iter().map(|t| threads(Some(t))).collect::<Result<_>>()?
    };
    if a.batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    if let Some(csv) = &a.csv {
        crate::commands::check_writable_file(csv, "--csv")?;
    }
    let (kinds, precisions) = (unique(&a.backend), unique(&a.precision));
    for &b in &kinds {
        for &p in &precisions {
            backends::check(b, p)?;
        }
        backends::probe(b).with_context(|| format!("--backend {} cannot run here", b.name()))?;
    }
    let exe = std::env::current_exe().context("finding the boltz binary to run each bench in")?;
    let mut combos: Vec<(&workloads::Workload, BackendKind, Precision, usize)> = Vec::new();
    for w in &workloads::WORKLOADS {
        for &b in &kinds {
            for &p in &precisions {
                combos.extend(thread_counts.iter().map(|&t| (w, b, p, t)));
            }
        }
    }
    let mut rows = Vec::with_capacity(combos.len());
    for (i, (w, b, p, t)) in combos.iter().enumerate() {
        let batch = a.batch.unwrap_or(w.bench_batch);
        errln!("[{}/{}] {} on {} {} (batch {batch}, {t} threads)", i + 1, combos.len(), w.name, b.name(), p);
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "--workload", w.name, "--backend", b.name(), "--precision", &p.to_string(), "--json"]);
        cmd.args(["--threads", &t.to_string(), "--repeats", &a.repeats.to_string(), "--batch", &batch.to_string(), "--no-ceiling"]);
        if let Some(m) = a.max_memory {
            cmd.args(["--max-memory", &m.to_string()]);
        }
        let out = cmd.stderr(std::process::Stdio::inherit()).output().context("starting a bench process")?;
        if !out.status.success() {
            bail!("{} on {} {}: the bench process failed ({}); see its message above", w.name, b.name(), p, out.status);
        }
        let mut row: BenchRecord = serde_json::from_slice(&out.stdout).context("reading a bench process's record")?;
        // The document's metadata covers every row.
        row.meta = None;
        rows.push(row);
    }
    // The machine's ceilings, once per thread count after every bench (no child shares its cores with them).
    let ceilings: Vec<MachineCeiling> = thread_counts.iter().map(|&t| MachineCeiling::measure(t)).collect();
    for row in &mut rows {
        if let Some(c) = ceilings.iter().find(|c| c.threads == row.threads) {
            row.percent_of_peak = c.percent_of_peak(row.backend, row.precision, row.gflops);
            row.ceiling = Some(c.clone());
        }
    }
    let table = comparison_table(&rows, &thread_counts);
    if let Some(csv) = &a.csv {
        write_csv(csv, &rows)?;
        errln!("wrote {}", csv.display());
    }
    if a.json {
        let doc = BenchAllRecord {
            schema_version: RECORD_SCHEMA_VERSION,
            command: "bench --all".into(),
            what: "every workload x backend x precision x threads at the benches' batch; each row timed in its own process (median, min and max of `repeats` forwards after one warm-up; peak_rss_bytes: that process's peak resident memory, including the binary, the model and the batch)".into(),
            meta: RunMeta::collect(thread_counts.iter().copied().max().unwrap_or(1)),
            args: serde_json::to_value(a)?,
            rows,
            table,
        };
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        outln!("{table}");
    }
    Ok(true)
}

/// The spread of a row as a percentage of its median: `(max − min) / median`.
fn spread_pct(r: &BenchRecord) -> f64 {
    if r.median_ms > 0.0 {
        100.0 * (r.max_ms - r.min_ms) / r.median_ms
    } else {
        f64::NAN
    }
}

/// The comparison table, like `torch.utils.benchmark.Compare`: one block per workload, one line per
/// backend and precision, one column per thread count; each cell the median milliseconds per forward with
/// the spread (max − min over the repeats, in % of the median) and GFLOP/s; `*` marks the fastest cell of
/// the block.
fn comparison_table(rows: &[BenchRecord], thread_counts: &[usize]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let col = 26;
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
    workloads.dedup();
    let _ = writeln!(
        out,
        "median ms per forward (± spread: max − min over the repeats, % of the median), GFLOP/s, %pk: % of the machine's measured FMA peak; * fastest"
    );
    let mut ceilings: Vec<&MachineCeiling> = Vec::new();
    for c in rows.iter().filter_map(|r| r.ceiling.as_ref()) {
        if !ceilings.contains(&c) {
            ceilings.push(c);
        }
    }
    for c in ceilings {
        let _ = writeln!(
            out,
            "machine ceiling, {} threads ({}): FMA peak f32 {:.1} GFLOP/s, f64 {:.1} GFLOP/s; triad {:.1} GB/s",
            c.threads, c.isa, c.fma_peak_gflops_f32, c.fma_peak_gflops_f64, c.triad_gb_per_s
        );
    }
    for w in workloads {
        let block: Vec<&BenchRecord> = rows.iter().filter(|r| r.workload == w).collect();
        let best = block.iter().map(|r| r.median_ms).fold(f64::INFINITY, f64::min);
        let batch = block.first().map_or(String::from("?"), |r| r.batch.to_string());
        let _ = write!(out, "\n[{w}, batch {batch}]\n{:<16}", "");
        for t in thread_counts {
            let _ = write!(out, "{:>col$}", format!("threads={t}"));
        }
        let _ = writeln!(out);
        let mut labels: Vec<(BackendKind, Precision)> = Vec::new();
        for r in &block {
            if !labels.contains(&(r.backend, r.precision)) {
                labels.push((r.backend, r.precision));
            }
        }
        for (b, p) in labels {
            let _ = write!(out, "{:<16}", format!("{b} {p}"));
            for t in thread_counts {
                let cell = block.iter().find(|r| r.backend == b && r.precision == p && r.threads == *t).map(|r| {
                    let star = if r.median_ms == best { "*" } else { " " };
                    let peak = r.percent_of_peak.map_or(String::new(), |p| format!(" {p:.0}%pk"));
                    format!("{:.3}{star} ±{:.0}% {:.1}{peak}", r.median_ms, spread_pct(r), r.gflops)
                });
                let _ = write!(out, "{:>col$}", cell.unwrap_or_else(|| "-".into()));
            }
            let _ = writeln!(out);
        }
    }
    out
}

/// The rows as CSV: workload, backend, precision, threads, batch, median/min/max ms, spread %, GFLOP/s,
/// peak RSS (written atomically).
fn write_csv(path: &std::path::Path, rows: &[BenchRecord]) -> Result<()> {
    use boltz_lab::meta::csv_text;
    const HEADER: [&str; 11] =
        ["workload", "backend", "precision", "threads", "batch", "median_ms", "min_ms", "max_ms", "spread_pct", "gflops", "peak_rss_bytes"];
    let text = csv_text(
        &HEADER,
        rows.iter().map(|r| {
            [
                r.workload.clone(),
                r.backend.to_string(),
                r.precision.to_string(),
                r.threads.to_string(),
                r.batch.to_string(),
                r.median_ms.to_string(),
                r.min_ms.to_string(),
                r.max_ms.to_string(),
                format!("{:.3}", spread_pct(r)),
                r.gflops.to_string(),
                r.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
            ]
        }),
    );
    boltz_core::format::write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
