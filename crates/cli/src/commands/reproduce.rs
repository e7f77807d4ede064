//! `boltz reproduce`, `plot` and `check`: the experiment suite, its charts, and re-run comparison.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use boltz_charts as charts;
use boltz_lab::outdir::OutDir;
use boltz_lab::resources::{MemoryBudget, TimeBudget};
use boltz_lab::suite::check;
use boltz_lab::suite::checkpoint::Mode;
use boltz_lab::suite::config::SuiteConfig;
use boltz_lab::suite::{self, RunOptions};
use serde_json::json;

use crate::cli::{CheckArgs, ReproduceArgs};

/// Redraws the charts of a directory whose lock the caller holds, writes its tables and its contact sheet
/// (`gallery.md`), and removes the files of charts that a table now stands in for.
pub(crate) fn plot(dir: &OutDir) -> Result<Vec<PathBuf>> {
    plot_dir(dir.path()).map(|(files, _, _)| files)
}

/// [`plot`] on a locked directory's path: the files written, the charts and the tables.
fn plot_dir(path: &std::path::Path) -> Result<(Vec<PathBuf>, Vec<charts::Chart>, Vec<charts::Table>)> {
    let results = suite::load_results(path)?;
    if results.is_empty() {
        bail!("{}: no result files (capacity.json, separation.json, ...) to plot", path.display());
    }
    let drawn = charts::charts(&results)?;
    let mut files = draw_all(&drawn, path)?;
    let tables = charts::tables(&results)?;
    for stale in tables.iter().flat_map(|t| &t.replaces) {
        for ext in ["png", "svg", "pdf"] {
            let f = path.join(format!("{stale}.{ext}"));
            if f.exists() {
                std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
            }
        }
    }
    let gallery = path.join("gallery.md");
    let section = charts::gallery_section("This directory", "", &drawn, &tables);
    let command = format!("boltz plot {}", path.display());
    std::fs::write(&gallery, charts::gallery_header(&command) + &section).with_context(|| format!("writing {}", gallery.display()))?;
    files.push(gallery);
    Ok((files, drawn, tables))
}

/// The bench charts (`bench_history`, `throughput`) of a history file, with its ratio baseline and the
/// measured ceiling.
pub(crate) fn history_charts(file: &std::path::Path, baseline: &std::path::Path, ceiling: &std::path::Path) -> Result<[charts::Chart; 2]> {
    let read = |p: &std::path::Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let text = read(file)?;
    let base = charts::Baseline::parse(&read(baseline)?).with_context(|| baseline.display().to_string())?;
    let history = charts::history_chart(&text, &base).with_context(|| file.display().to_string())?;
    let throughput =
        charts::throughput_chart(&text, &read(ceiling)?).with_context(|| format!("{} with {}", file.display(), ceiling.display()))?;
    Ok([history, throughput])
}

/// Draws charts into a directory whose lock the caller holds and returns the files written.
pub(crate) fn draw_all(drawn: &[charts::Chart], dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for chart in drawn {
        files.extend(charts::draw(chart, dir)?);
    }
    Ok(files)
}

/// Subdirectories of `dir` that hold result files, sorted.
fn result_subdirs(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir() && suite::load_results(p).is_ok_and(|r| !r.is_empty()))
                .collect()
        })
        .unwrap_or_default();
    subdirs.sort();
    subdirs
}

/// Whether `dir` is a directory of results directories (some subdirectory holds result files) or has a
/// bench history.
pub(crate) fn is_tree(dir: &std::path::Path) -> bool {
    dir.join("bench-history.jsonl").exists() || !result_subdirs(dir).is_empty()
}

/// `boltz plot DIR` where DIR holds no result files itself: every subdirectory that does is redrawn (each
/// under its own lock), the bench charts too where DIR has `bench-history.jsonl`, and `DIR/gallery.md`
/// shows them all.
pub(crate) fn plot_tree(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let subdirs = result_subdirs(dir);
    let history = dir.join("bench-history.jsonl");
    if subdirs.is_empty() && !history.exists() {
        bail!("{}: no result files (capacity.json, separation.json, ...) here or in its subdirectories to plot", dir.display());
    }
    let out = OutDir::lock(dir)?;
    let mut files = Vec::new();
    let mut sections = String::new();
    if history.exists() {
        let drawn = history_charts(&history, &dir.join("bench-baselines/ratios.json"), &dir.join("backends/gemm-ceiling.json"))?;
        files.extend(draw_all(&drawn, out.path())?);
        sections.push_str(&charts::gallery_section("Benchmarks (`bench-history.jsonl`)", "", &drawn, &[]));
    }
    for sub in &subdirs {
        let name = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let lock = OutDir::lock(sub)?;
        let (written, drawn, tables) = plot_dir(lock.path())?;
        files.extend(written);
        sections.push_str(&charts::gallery_section(&format!("`{name}/`"), &format!("{name}/"), &drawn, &tables));
    }
    let gallery = dir.join("gallery.md");
    let command = format!("boltz plot {}", dir.display());
    std::fs::write(&gallery, charts::gallery_header(&command) + &sections).with_context(|| format!("writing {}", gallery.display()))?;
    files.push(gallery);
    Ok(files)
}

pub(crate) fn reproduce(a: &ReproduceArgs) -> Result<bool> {
    // Everything is checked before the first point runs: the configuration (every field), every point's
    // dataset and memory, and the output directory (created, writable, locked against a second writer).
    let cfg = SuiteConfig::load(a.config.as_deref(), a.quick, &a.set)?;
    if a.plan {
        return show_plan(&cfg, a);
    }
    suite::check_points(&cfg, &MemoryBudget::new(a.max_memory), &TimeBudget::new(a.max_time))?;
    let out = OutDir::lock(&a.out)?;
    let mode = match (a.resume, a.restart) {
        (true, _) => Mode::Resume,
        (_, true) => Mode::Restart,
        _ => Mode::Fresh,
    };
    let start = Instant::now();
    let models = a.export_models.then(|| a.out.join("models"));
    let options = RunOptions { shard: a.shard, mode, progress: &crate::progress::Bar::new(), export_models: models.as_deref() };
    let outcome = suite::run_suite(&cfg, &out, options)?;
    for f in &outcome.files {
        errln!("wrote {}", f.display());
    }
    if a.shard.is_none() && !a.no_plot {
        for f in plot(&out)? {
            errln!("drew {}", f.display());
        }
    }
    errln!(
        "done in {:.1}s{}",
        start.elapsed().as_secs_f64(),
        if outcome.resumed_points > 0 {
            format!(" ({} points resumed from the checkpoint)", outcome.resumed_points)
        } else {
            String::new()
        }
    );
    if let Some(models) = &models {
        errln!(
            "exported the models of the construction points run now into {}/point-NNN/ (NNN: the row's point){}",
            models.display(),
            if outcome.resumed_points > 0 { "; points resumed from the checkpoint were not exported again" } else { "" }
        );
    }
    if !outcome.failed_properties.is_empty() {
        errln!("checked properties failed at: {}", outcome.failed_properties.join(", "));
    }
    let reproduced = match a.shard.is_none() && !a.no_compare {
        true => compare_with_committed(&a.compare, &a.out)?,
        false => true,
    };
    Ok(outcome.failed_properties.is_empty() && reproduced)
}

/// `reproduce --plan`: the points, their memory lower bounds and recorded seconds; runs nothing.
fn show_plan(cfg: &SuiteConfig, a: &ReproduceArgs) -> Result<bool> {
    let plan = suite::plan(cfg, (!a.no_compare).then_some(a.compare.as_path()))?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(true);
    }
    let human = |b: Option<u64>| b.map_or("beyond 64 bits".to_string(), boltz_lab::resources::human);
    outln!("{:>5}  {:<14} {:>12} {:>10}  what", "point", "experiment", "memory ≥", "recorded");
    for p in &plan {
        let secs = p.recorded_seconds.map_or("—".to_string(), |s| format!("{s:.1} s"));
        outln!("{:>5}  {:<14} {:>12} {:>10}  {:?}", p.point, p.experiment, human(p.memory_bytes), secs, p.spec);
    }
    let recorded: Vec<f64> = plan.iter().filter_map(|p| p.recorded_seconds).collect();
    outln!(
        "{} points; {} with a recorded time in {} ({:.0} s in all){}",
        plan.len(),
        recorded.len(),
        a.compare.display(),
        recorded.iter().sum::<f64>() + 0.0,
        if recorded.len() < plan.len() { "; the others have no run of this configuration there" } else { "" }
    );
    Ok(true)
}

/// The end of a run: its exact fields against the committed results in `committed` (timings listed
/// beyond 5×, never failing). A missing directory, the run's own, or another configuration's is
/// skipped with a note.
fn compare_with_committed(committed: &std::path::Path, out: &std::path::Path) -> Result<bool> {
    let same_dir = |a: &std::path::Path, b: &std::path::Path| a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(a, b)| a == b);
    if !committed.is_dir() {
        errln!("not compared: {} does not exist", committed.display());
        return Ok(true);
    }
    if same_dir(committed, out) {
        errln!("wrote the committed results in {}: `git diff` shows what changed", out.display());
        return Ok(true);
    }
    match check::compare_dirs(committed, out, check::Timings::reported()) {
        Ok(report) => {
            errln!("compared with {}:", committed.display());
            use std::io::Write as _;
            std::io::stderr().lock().write_all(check::render(&report).as_bytes()).context("writing to stderr")?;
            Ok(report.passes())
        }
        Err(e) if e.downcast_ref::<check::SameConfig>().is_some() => {
            errln!("not compared: {} holds another configuration's results", committed.display());
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn check(a: &CheckArgs) -> Result<bool> {
    let rerun_dir = match &a.with {
        Some(dir) => dir.clone(),
        None => {
            // Re-run the committed results' own configuration into a fresh directory.
            let results = suite::load_results(&a.dir)?;
            let Some(first) = results.values().next() else {
                bail!("{}: no result files to check", a.dir.display());
            };
            let dir = a.out.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("boltz-check-{}", std::process::id())));
            let out = OutDir::lock(&dir)?;
            errln!("re-running the configuration of {} into {}", a.dir.display(), dir.display());
            let outcome = suite::run_suite(
                &first.config,
                &out,
                RunOptions { shard: None, mode: Mode::Restart, progress: &crate::progress::Bar::new(), export_models: None },
            )?;
            if !outcome.failed_properties.is_empty() {
                errln!("checked properties failed in the re-run at: {}", outcome.failed_properties.join(", "));
            }
            dir
        }
    };
    let timings = match a.time_factor {
        Some(f) => check::Timings::enforced(f)?,
        None => check::Timings::reported(),
    };
    let report = check::compare_dirs(&a.dir, &rerun_dir, timings)?;
    if a.json {
        let diffs: Vec<serde_json::Value> = report
            .differences
            .iter()
            .map(|d| json!({"experiment": d.experiment, "point": d.point, "field": d.field, "committed": d.committed, "rerun": d.rerun, "why": d.why, "timing": d.timing, "machine_dependent": d.machine}))
            .collect();
        let record = json!({
            "command": "check", "committed": a.dir, "rerun": rerun_dir,
            "time_factor": if timings.factor.is_finite() { json!(timings.factor) } else { json!("inf") },
            "timings_enforced": timings.enforced, "passes": report.passes(),
            "rows": report.rows, "exact_fields": report.exact_fields, "exact_fields_agreeing": report.exact_agreeing(),
            "timing_fields": report.timing_fields, "machine_dependent_fields": report.machine_fields, "differences": diffs,
        });
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        use std::io::Write as _;
        std::io::stdout().lock().write_all(check::render(&report).as_bytes()).context("writing to stdout")?;
    }
    Ok(report.passes())
}
