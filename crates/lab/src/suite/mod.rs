//! The experiment suite: its configuration ([`config`]), its points ([`points`](mod@points)), one module per
//! experiment, the checkpoint that makes a run resumable ([`checkpoint`]), the result files ([`files`])
//! and the comparison of two runs ([`check`]).
//!
//! A run ([`run_suite`]) checks every point first ([`check_points`]), then runs the points not yet in the
//! checkpoint, appending each finished one, and derives the result files from the checkpoint.

mod adversarial;
mod approximation;
mod capacity;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod files;
mod hardmax;
pub mod points;
mod runs;
mod separation;
mod trained;

pub use files::{load_results, merge, read_result_file, result_path, ResultFile, SCHEMA_VERSION};
pub use points::{points, PointResult, PointSpec, Shard, EXPERIMENTS};
pub use runs::LATENCY_REPEATS;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use boltz_core::{DatasetSpec, VocabKind};
use serde_json::{json, Value};

use crate::meta::{write_csv, write_json, RunMeta};
use adversarial::adversarial_point;
use approximation::approximation_point;
use capacity::{capacity_point, dataset_file, dataset_point};
use config::SuiteConfig;
use hardmax::hardmax_point;
use separation::separation_point;
use trained::{trained_data, trained_point};

/// Summary of a suite run.
pub struct SuiteOutcome {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Points whose checked property failed (`experiment#point`).
    pub failed_properties: Vec<String>,
    /// Points taken from an earlier run's checkpoint (`--resume`).
    pub resumed_points: usize,
}

/// The memory lower bound of one point (bytes; `None` where the estimate overflows 64 bits), after
/// checking the dataset it generates ([`DatasetSpec::validate`]) or reads.
fn point_memory(cfg: &SuiteConfig, spec: &PointSpec) -> Result<Option<u64>> {
    let data = match spec {
        PointSpec::Capacity { sequences, .. } => {
            let c = &cfg.capacity;
            DatasetSpec {
                sequences: *sequences,
                length: c.length,
                dim: c.dim,
                vocab: c.vocab,
                seed: cfg.seed,
                classes: 2,
                ..Default::default()
            }
        }
        PointSpec::Adversarial { family, dim, sequences, .. } => {
            let a = &cfg.adversarial;
            let vocab_kind: VocabKind = family.parse().map_err(|e: boltz_core::UnknownName| anyhow!("{e}"))?;
            let (length, vocab, seed) = (a.length, a.vocab, cfg.seed);
            DatasetSpec { sequences: *sequences, length, dim: *dim, vocab, seed, classes: 2, vocab_kind, ..Default::default() }
        }
        PointSpec::Separation { length, vocab, dim } => {
            let (sequences, seed) = (cfg.separation.sequences, cfg.seed);
            DatasetSpec { sequences, length: *length, dim: *dim, vocab: *vocab, seed, ..Default::default() }
        }
        PointSpec::Dataset { dataset, .. } => {
            let ds = dataset_file(cfg, dataset).and_then(|f| f.read())?;
            let [big_n, n, d] = ds.inputs.shape();
            return Ok(crate::resources::memorize_bytes(big_n, n, d, 0));
        }
        PointSpec::Approximation { .. } => {
            let a = &cfg.approximation;
            return Ok(crate::resources::approximate_bytes(a.samples, a.length, 1));
        }
        PointSpec::Hardmax { .. } => return Ok(Some(0)),
        PointSpec::Trained { family, dim, .. } => DatasetSpec { sequences: cfg.trained.max_sequences, ..trained_data(cfg, family, *dim)? },
    };
    data.validate().map_err(|e| anyhow!("{e}"))?;
    Ok(crate::resources::memorize_bytes(data.sequences, data.length, data.dim, data.vocab))
}

/// Refuses a configuration that runs nothing, or the same point twice (e.g. `capacity.sequences: [3, 3]`:
/// two identical rows).
fn check_plan(points: &[PointSpec]) -> Result<()> {
    if points.is_empty() {
        bail!("invalid configuration: no points (every experiment's lists are empty: capacity.policies, separation.grid, ...)");
    }
    for (i, p) in points.iter().enumerate() {
        if let Some(j) = points[..i].iter().position(|q| q == p) {
            bail!("invalid configuration: points {j} and {i} are the same ({p:?}): a value is listed twice");
        }
    }
    Ok(())
}

/// The arithmetic lower bound of a construction point's verification ([`crate::resources::memorize_ops`]);
/// `Some(0)` for the points that verify no memorizer.
fn point_ops(cfg: &SuiteConfig, spec: &PointSpec) -> Result<Option<u64>> {
    let (sequences, length, dim) = match spec {
        PointSpec::Capacity { sequences, .. } => (*sequences, cfg.capacity.length, cfg.capacity.dim),
        PointSpec::Adversarial { sequences, dim, .. } => (*sequences, cfg.adversarial.length, *dim),
        PointSpec::Dataset { dataset, .. } => {
            let [big_n, n, d] = dataset_file(cfg, dataset).and_then(|f| f.read())?.inputs.shape();
            (big_n, n, d)
        }
        _ => return Ok(Some(0)),
    };
    Ok(crate::resources::memorize_ops(sequences, length, dim))
}

/// Checks every point of the suite before any runs: there are points, none twice, the
/// dataset each point generates is valid ([`DatasetSpec::validate`]), its memory lower bound fits
/// `memory` and its verification's time lower bound fits `time`. Errors name the point.
pub fn check_points(cfg: &SuiteConfig, memory: &crate::resources::MemoryBudget, time: &crate::resources::TimeBudget) -> Result<()> {
    let all = points(cfg);
    check_plan(&all)?;
    let threads = crate::resources::threads(Some(cfg.threads), "field threads")?;
    for (index, spec) in all.iter().enumerate() {
        let named = || format!("point {index} ({spec:?})");
        memory.check(&named(), point_memory(cfg, spec).with_context(named)?)?;
        time.check(&named(), point_ops(cfg, spec).with_context(named)?, threads)?;
    }
    Ok(())
}

/// One point of a plan ([`plan`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PlannedPoint {
    /// The point's index (what `--shard` splits and the result rows' `point` say).
    pub point: usize,
    /// Its experiment.
    pub experiment: &'static str,
    /// What it runs.
    pub spec: PointSpec,
    /// Its memory lower bound in bytes (`None`: beyond 64 bits).
    pub memory_bytes: Option<u64>,
    /// The seconds the same point took in `recorded`'s run of the same configuration, where there is one.
    pub recorded_seconds: Option<f64>,
}

/// Every point of `cfg` with its memory lower bound and, where `recorded` holds results of the same
/// configuration, the seconds the same point took there.
pub fn plan(cfg: &SuiteConfig, recorded: Option<&std::path::Path>) -> Result<Vec<PlannedPoint>> {
    let results = match recorded.filter(|d| d.is_dir()) {
        Some(dir) => load_results(dir)?,
        None => Default::default(),
    };
    let seconds = |experiment: &str, point: usize| -> Option<f64> {
        let file = results.get(experiment).filter(|f| f.config == *cfg)?;
        file.rows.iter().find(|r| r.get("point").and_then(serde_json::Value::as_u64) == Some(point as u64))?.get("seconds")?.as_f64()
    };
    let all = points(cfg);
    check_plan(&all)?;
    all.into_iter()
        .enumerate()
        .map(|(point, spec)| {
            let memory_bytes = point_memory(cfg, &spec).with_context(|| format!("point {point} ({spec:?})"))?;
            let experiment = spec.experiment();
            Ok(PlannedPoint { point, experiment, recorded_seconds: seconds(experiment, point), memory_bytes, spec })
        })
        .collect()
}

/// How a suite run starts (see [`crate::suite::checkpoint::Mode`]) and reports.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// Only this shard's points.
    pub shard: Option<Shard>,
    /// Fresh, resume or restart.
    pub mode: crate::suite::checkpoint::Mode,
    /// Where progress goes: one [`Event::Step`](crate::progress::Event::Step) per point
    /// ([`crate::progress::Silent`] for none).
    pub progress: &'a dyn crate::progress::Progress,
    /// Where each construction point run now writes its model and dataset (`point-NNN/`, the row's
    /// `point`; see [`crate::export`]); `None` for no exports.
    pub export_models: Option<&'a std::path::Path>,
}

/// Runs the suite (or a shard of it) into a locked output directory: every finished point is appended to
/// the checkpoint (synced) as it finishes, points finished by an earlier run are skipped under
/// `Mode::Resume`, and one JSON and one CSV file per experiment are then derived from the checkpoint.
/// A shard writes a file for every experiment of the configuration, with no rows where it has no points
/// (an explicit marker that the shard ran).
pub fn run_suite(cfg: &SuiteConfig, out: &crate::outdir::OutDir, opts: RunOptions) -> Result<SuiteOutcome> {
    use crate::suite::checkpoint::{Checkpoint, FinishedPoint};
    let threads = crate::resources::threads(Some(cfg.threads), "field threads")?;
    // A configured backend that cannot run here (cuda without a GPU) is refused before any point runs.
    if points(cfg).iter().any(|p| matches!(p, PointSpec::Capacity { .. } | PointSpec::Dataset { .. } | PointSpec::Adversarial { .. })) {
        for (i, run) in cfg.backends.iter().enumerate() {
            crate::backends::probe(run.backend).with_context(|| format!("field backends[{i}]: {} cannot run here", run.backend.name()))?;
        }
    }
    let meta = RunMeta::collect(threads);
    let all = points(cfg);
    let shard = opts.shard;
    let mine: Vec<(usize, PointSpec)> =
        all.iter().cloned().enumerate().filter(|(i, _)| shard.is_none_or(|s| i % s.count == s.index)).collect();
    if let Some(dir) = opts.export_models {
        std::fs::create_dir_all(dir).with_context(|| format!("--export-models {}: cannot create the directory", dir.display()))?;
        for (index, _) in &mine {
            crate::export::check_export_dir(&model_export_dir(dir, *index), "--export-models")?;
        }
    }
    let mut cp = Checkpoint::open(out.path(), cfg, shard, mine.len(), &meta, opts.mode)?;
    let resumed = mine.iter().filter(|(i, _)| cp.finished.contains_key(i)).count();
    let todo: Vec<&(usize, PointSpec)> = mine.iter().filter(|(i, _)| !cp.finished.contains_key(i)).collect();
    use crate::progress::Event;
    let total = mine.len();
    opts.progress.event(Event::Started { total, done: resumed, kept_in: Some(cp.file_path()) });
    for (done, (index, spec)) in todo.iter().enumerate() {
        let label = format!("point {index}: {spec:?}");
        opts.progress.event(Event::Step { done: resumed + done, total, label: &label });
        let t = Instant::now();
        let result = run_point(cfg, spec, threads).with_context(|| {
            format!(
                "point {index} ({spec:?}); the {} finished points are kept in {} (run again with --resume)",
                cp.finished.len(),
                cp.file_path().display()
            )
        })?;
        if let (Some(dir), Some(built)) = (opts.export_models, &result.model) {
            crate::export::export(&model_export_dir(dir, *index), &built.model, &built.data)
                .with_context(|| format!("point {index} ({spec:?}): exporting its model"))?;
        }
        let mut row = result.row;
        if let Some(obj) = row.as_object_mut() {
            obj.insert("point".into(), json!(index));
            obj.insert("seconds".into(), json!(t.elapsed().as_secs_f64()));
            obj.insert("property_held".into(), json!(result.property_held));
        }
        cp.record(FinishedPoint { experiment: spec.experiment().into(), row })?;
        opts.progress.event(Event::Finished { done: resumed + done + 1, total });
    }
    opts.progress.event(Event::Ended);
    // The result files, derived from the checkpoint.
    let mut failed = Vec::new();
    let mut files = Vec::new();
    for exp in EXPERIMENTS {
        if !all.iter().any(|p| p.experiment() == exp) {
            continue;
        }
        let rows: Vec<Value> = cp.finished.values().filter(|p| p.experiment == exp).map(|p| p.row.clone()).collect();
        if shard.is_none() && rows.is_empty() {
            continue;
        }
        for row in &rows {
            if row.get("property_held").and_then(Value::as_bool) == Some(false) {
                failed.push(format!("{exp}#{}", row.get("point").and_then(Value::as_u64).unwrap_or(u64::MAX)));
            }
        }
        let file = ResultFile {
            schema_version: SCHEMA_VERSION,
            experiment: exp.into(),
            meta: meta.clone(),
            config: cfg.clone(),
            shard: shard.map(|s| format!("{}/{}", s.index, s.count)),
            merged_from: vec![],
            resumed_from: cp.runs[..cp.runs.len() - 1].to_vec(),
            seconds: rows.iter().filter_map(|r| r.get("seconds").and_then(Value::as_f64)).sum(),
            rows,
        };
        let path = result_path(out.path(), exp, shard);
        write_json(&path, &file)?;
        write_csv(&path.with_extension("csv"), &file.rows)?;
        files.push(path);
    }
    cp.finish()?;
    Ok(SuiteOutcome { files, failed_properties: failed, resumed_points: resumed })
}

/// The directory `--export-models` writes point `index`'s model into.
pub fn model_export_dir(dir: &std::path::Path, index: usize) -> PathBuf {
    dir.join(format!("point-{index:03}"))
}

/// Runs one point.
pub fn run_point(cfg: &SuiteConfig, spec: &PointSpec, threads: usize) -> Result<PointResult> {
    match spec {
        PointSpec::Capacity { sequences, policy } => capacity_point(cfg, *sequences, *policy, threads),
        PointSpec::Dataset { dataset, policy } => dataset_point(cfg, dataset, *policy, threads),
        PointSpec::Adversarial { family, dim, sequences, policy } => adversarial_point(cfg, family, *dim, *sequences, *policy, threads),
        PointSpec::Separation { length, vocab, dim } => separation_point(cfg, *length, *vocab, *dim, threads),
        PointSpec::Approximation { target, cells } => approximation_point(cfg, target, *cells, threads),
        PointSpec::Hardmax { dim } => hardmax_point(cfg, *dim),
        PointSpec::Trained { family, dim, model, ffn_width } => trained_point(cfg, family, *dim, model, *ffn_width, threads),
    }
}
