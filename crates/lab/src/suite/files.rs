//! The suite's result files: one JSON (and CSV) per experiment, written from the checkpoint, merged from
//! shards, read back (older schema versions migrated).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::SuiteConfig;
use super::points::{points, Shard, EXPERIMENTS};
use crate::meta::{write_csv, write_json, RunMeta};

/// The version of the result-file schema (`docs/results.md`). Fields are only added within a version;
/// renaming or removing one bumps it. Files without the field are version 1 (the same fields as 2).
/// Version 3 replaced the flat `f64_accuracy`/`…_cpu`/`latency_*_ms` columns of capacity and adversarial
/// rows by the `runs` list (one entry per configured backend); [`load_results`] migrates older rows.
pub const SCHEMA_VERSION: u32 = 3;

pub(super) fn schema_version_1() -> u32 {
    1
}

/// A result file: rows of one experiment with the metadata and configuration of the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResultFile {
    /// The schema version ([`SCHEMA_VERSION`] when written by this build).
    #[serde(default = "schema_version_1")]
    pub schema_version: u32,
    /// Experiment name.
    pub experiment: String,
    /// Run metadata.
    pub meta: RunMeta,
    /// The full suite configuration.
    pub config: SuiteConfig,
    /// `"i/k"` for a shard, `null` for a whole run.
    pub shard: Option<String>,
    /// Files merged into this one (by `boltz merge`).
    #[serde(default)]
    pub merged_from: Vec<String>,
    /// Earlier runs whose finished points this file includes (`--resume`), oldest first; `meta` is the
    /// run that finished it.
    #[serde(default)]
    pub resumed_from: Vec<RunMeta>,
    /// Seconds the rows took.
    pub seconds: f64,
    /// One object per point, each with its `point` index.
    pub rows: Vec<Value>,
}

/// The file name of an experiment's results, whole or shard.
pub fn result_path(dir: &Path, experiment: &str, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => dir.join(format!("{experiment}.json")),
        Some(s) => dir.join(format!("{experiment}.shard-{}-of-{}.json", s.index, s.count)),
    }
}

/// Reads one result file (whole or shard) as this build reads every file: a newer schema is refused, and
/// the construction rows of schema 1–2 are migrated to schema 3 (`runs`), so the file is schema 3.
pub fn read_result_file(path: &Path) -> Result<ResultFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut file: ResultFile = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if file.schema_version > SCHEMA_VERSION {
        bail!(
            "{}: schema version {} is newer than this build reads ({SCHEMA_VERSION}); use a newer boltz",
            path.display(),
            file.schema_version
        );
    }
    if file.schema_version < 3 {
        if ["capacity", "adversarial"].contains(&file.experiment.as_str()) {
            file.rows.iter_mut().for_each(crate::rows::migrate_construction_row);
        }
        file.schema_version = 3;
    }
    Ok(file)
}

/// Loads the whole result files present in `dir`.
pub fn load_results(dir: &Path) -> Result<BTreeMap<String, ResultFile>> {
    let mut out = BTreeMap::new();
    for exp in EXPERIMENTS {
        let path = result_path(dir, exp, None);
        if path.exists() {
            let file = read_result_file(&path)?;
            // A whole run's file: its own experiment, not a shard (merge those first).
            if file.experiment != *exp {
                bail!("{}: holds the {:?} experiment's results, not {exp}'s", path.display(), file.experiment);
            }
            if let Some(shard) = &file.shard {
                bail!("{}: is shard {shard} of a run, under a whole run's name; merge the shards with boltz merge", path.display());
            }
            out.insert(exp.to_string(), file);
        }
    }
    Ok(out)
}

/// `(i, k)` from a shard file name `<experiment>.shard-<i>-of-<k>.json`.
pub(super) fn shard_of_name(name: &str, experiment: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix(experiment)?.strip_prefix(".shard-")?.strip_suffix(".json")?;
    let (i, k) = rest.split_once("-of-")?;
    Some((i.parse().ok()?, k.parse().ok()?))
}

/// Merges the shard files of every experiment in `dir` into whole result files — complete or nothing.
///
/// Everything is validated before anything is written: each file holds the experiment and the shard its
/// name says; all shards of all experiments share one configuration, one shard count and one build (git
/// revision, dirty flag, version, compiler); and every point the configuration defines for an experiment
/// is present exactly once. Any violation is an error naming the files and points.
pub fn merge(dir: &Path) -> Result<Vec<PathBuf>> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().to_str().map(String::from)))
        .collect();
    // (experiment, shard files) with their parsed contents.
    let mut per_experiment: Vec<(&str, Vec<(PathBuf, ResultFile)>)> = Vec::new();
    for exp in EXPERIMENTS {
        let mut files = Vec::new();
        let mut shard_names: Vec<&String> =
            names.iter().filter(|n| n.starts_with(&format!("{exp}.shard-")) && n.ends_with(".json")).collect();
        shard_names.sort();
        for name in shard_names {
            let path = dir.join(name);
            let (i, k) = shard_of_name(name, exp)
                .ok_or_else(|| anyhow!("{}: not a shard file name (<experiment>.shard-<i>-of-<k>.json)", path.display()))?;
            let file = read_result_file(&path)?;
            if file.experiment != exp {
                bail!("{}: holds experiment {:?}, not {exp:?} as its name says", path.display(), file.experiment);
            }
            if file.shard.as_deref() != Some(format!("{i}/{k}").as_str()) {
                bail!("{}: holds shard {:?}, not {i}/{k} as its name says", path.display(), file.shard);
            }
            files.push((path, file));
        }
        if !files.is_empty() {
            per_experiment.push((exp, files));
        }
    }
    let Some(first) = per_experiment.first().and_then(|(_, f)| f.first()) else { return Ok(Vec::new()) };
    let (first_path, first) = (first.0.clone(), first.1.clone());
    let build = |f: &ResultFile| (f.meta.git_rev.clone(), f.meta.git_dirty, f.meta.version.clone(), f.meta.rustc.clone());
    let count_of = |f: &ResultFile| f.shard.as_deref().and_then(|s| s.split_once('/')).map(|(_, k)| k.to_string());
    for (path, f) in per_experiment.iter().flat_map(|(_, files)| files) {
        if f.config != first.config {
            bail!("{} and {} were run with different configurations; refusing to mix them", path.display(), first_path.display());
        }
        if count_of(f) != count_of(&first) {
            bail!(
                "{} ({:?}) and {} ({:?}) split the suite into different numbers of shards",
                path.display(),
                f.shard,
                first_path.display(),
                first.shard
            );
        }
        if build(f) != build(&first) {
            bail!(
                "{} comes from build {:?} and {} from {:?} (git revision, dirty, version, compiler); merge shards of one build",
                path.display(),
                build(f),
                first_path.display(),
                build(&first)
            );
        }
    }
    // Completeness: every shard's file (a shard without points of an experiment writes one with no rows)
    // and every point of each experiment exactly once.
    let all = points(&first.config);
    let k: usize = count_of(&first).and_then(|k| k.parse().ok()).unwrap_or(1);
    let mut merged = Vec::new();
    for (exp, files) in &per_experiment {
        let present: Vec<usize> = files.iter().filter_map(|(_, f)| f.shard.as_deref()?.split_once('/')?.0.parse().ok()).collect();
        let absent: Vec<String> = (0..k)
            .filter(|i| !present.contains(i))
            .map(|i| result_path(dir, exp, Some(Shard { index: i, count: k })).display().to_string())
            .collect();
        if !absent.is_empty() {
            bail!("{exp}: incomplete, shard files missing: {}; run the missing shards before merging", absent.join(", "));
        }
        let expected: Vec<usize> = all.iter().enumerate().filter(|(_, p)| p.experiment() == *exp).map(|(i, _)| i).collect();
        let mut seen: BTreeMap<u64, &Path> = BTreeMap::new();
        let mut duplicates = Vec::new();
        for (path, f) in files {
            for row in &f.rows {
                let point =
                    row.get("point").and_then(Value::as_u64).ok_or_else(|| anyhow!("{}: a row without a point index", path.display()))?;
                if let Some(other) = seen.insert(point, path) {
                    duplicates.push(format!("point {point} in {} and {}", other.display(), path.display()));
                }
            }
        }
        if !duplicates.is_empty() {
            bail!("{exp}: duplicate points: {}", duplicates.join("; "));
        }
        let missing: Vec<usize> = expected.iter().copied().filter(|i| !seen.contains_key(&(*i as u64))).collect();
        if !missing.is_empty() {
            let which: Vec<String> = missing.iter().map(|i| format!("{i} (shard {}/{k})", i % k)).collect();
            bail!("{exp}: incomplete, missing points {}; run the missing shards before merging", which.join(", "));
        }
        let unknown: Vec<u64> = seen.keys().copied().filter(|p| !expected.contains(&(*p as usize))).collect();
        if !unknown.is_empty() {
            bail!("{exp}: points {unknown:?} are not points of this experiment in the configuration");
        }
        let mut rows: Vec<Value> = files.iter().flat_map(|(_, f)| f.rows.clone()).collect();
        rows.sort_by_key(|r| r.get("point").and_then(Value::as_u64).unwrap_or(u64::MAX));
        merged.push(ResultFile {
            schema_version: SCHEMA_VERSION,
            experiment: (*exp).into(),
            meta: first.meta.clone(),
            config: first.config.clone(),
            shard: None,
            merged_from: files.iter().map(|(p, _)| p.display().to_string()).collect(),
            resumed_from: files.iter().flat_map(|(_, f)| f.resumed_from.clone()).collect(),
            seconds: files.iter().map(|(_, f)| f.seconds).sum(),
            rows,
        });
    }
    // Only now write, every file atomically.
    let mut written = Vec::new();
    for file in merged {
        let path = result_path(dir, &file.experiment, None);
        write_json(&path, &file)?;
        write_csv(&path.with_extension("csv"), &file.rows)?;
        written.push(path);
    }
    Ok(written)
}
