//! The suite's checkpoint: every finished point is appended as one JSON line and synced to disk before
//! the next point starts, so Ctrl-C, `kill -9` or a crash loses at most the point in progress.
//! `boltz reproduce --resume` reads it back and skips the finished points of the same configuration,
//! shard and build; the result files are derived from it, and it is removed once they are written.
//!
//! Format (`checkpoint.jsonl`, or `checkpoint.shard-<i>-of-<k>.jsonl`): one header line
//! `{"checkpoint": 1, "config": …, "shard": …, "build": {…}, "points": m}`, then one line per run start
//! `{"run": RunMeta}` and one line per finished point `{"experiment": …, "row": {…, "point": i, …}}`.
//! A last line cut short by a kill is ignored (and cut off before appending); any other malformed line is
//! an error.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::meta::RunMeta;
use crate::suite::config::SuiteConfig;
use crate::suite::points::Shard;

/// The checkpoint format version.
const VERSION: u32 = 1;

/// What must match for finished points to be reused: the build that computed them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// Git revision the binary was built from.
    pub git_rev: String,
    /// Whether its sources were dirty.
    pub git_dirty: bool,
    /// Package version.
    pub version: String,
    /// Compiler.
    pub rustc: String,
}

impl Build {
    /// The build recorded in run metadata.
    pub fn of(meta: &RunMeta) -> Self {
        Self { git_rev: meta.git_rev.clone(), git_dirty: meta.git_dirty, version: meta.version.clone(), rustc: meta.rustc.clone() }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    checkpoint: u32,
    config: SuiteConfig,
    shard: Option<String>,
    build: Build,
    points: usize,
}

/// A finished point as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinishedPoint {
    /// Its experiment.
    pub experiment: String,
    /// Its result row (with `point`, `seconds`, `property_held`).
    pub row: Value,
}

impl FinishedPoint {
    /// The point index of the row.
    pub fn index(&self) -> Option<usize> {
        self.row.get("point").and_then(Value::as_u64).map(|p| p as usize)
    }
}

/// An open checkpoint, appending.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    file: File,
    /// Finished points read back (by point index), plus those appended since.
    pub finished: BTreeMap<usize, FinishedPoint>,
    /// Metadata of every run that wrote into it, oldest first (this run last).
    pub runs: Vec<RunMeta>,
}

/// The checkpoint file of a whole run or a shard.
pub fn path(dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => dir.join("checkpoint.jsonl"),
        Some(s) => dir.join(format!("checkpoint.shard-{}-of-{}.jsonl", s.index, s.count)),
    }
}

/// How to treat an existing checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Start a new run; an unfinished earlier run's checkpoint is an error (so it is never overwritten
    /// by accident).
    Fresh,
    /// Continue an earlier run of the same configuration, shard and build.
    Resume,
    /// Start a new run, discarding any earlier checkpoint.
    Restart,
}

/// What a checkpoint file holds.
struct Contents {
    header: Header,
    runs: Vec<RunMeta>,
    finished: BTreeMap<usize, FinishedPoint>,
    /// Length in bytes of the valid prefix (whole lines).
    valid_len: u64,
}

/// Lines of a checkpoint file: header, run starts, finished points. A last line without its newline (cut
/// by a kill) is dropped; `valid_len` is the length of the valid prefix.
fn read(path: &Path) -> Result<Contents> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&text[..complete]).with_context(|| format!("{}: not UTF-8", path.display()))?;
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next().ok_or_else(|| anyhow!("{}: empty checkpoint (no header line)", path.display()))?;
    let header: Header = serde_json::from_str(first).with_context(|| format!("{}: line 1 is not a checkpoint header", path.display()))?;
    if header.checkpoint != VERSION {
        bail!("{}: checkpoint format {} (this build reads {VERSION})", path.display(), header.checkpoint);
    }
    let mut runs = Vec::new();
    let mut finished = BTreeMap::new();
    for (i, line) in lines {
        let v: Value = serde_json::from_str(line).with_context(|| format!("{}: line {} is corrupt", path.display(), i + 1))?;
        if let Some(run) = v.get("run") {
            runs.push(serde_json::from_value(run.clone()).with_context(|| format!("{}: line {}", path.display(), i + 1))?);
        } else {
            let p: FinishedPoint = serde_json::from_value(v).with_context(|| format!("{}: line {}", path.display(), i + 1))?;
            let index = p.index().ok_or_else(|| anyhow!("{}: line {} has no point index", path.display(), i + 1))?;
            finished.insert(index, p);
        }
    }
    Ok(Contents { header, runs, finished, valid_len: complete as u64 })
}

/// Refuses to resume `existing` unless it is the checkpoint of the same configuration, shard and build.
fn check_resumable(path: &Path, existing: &Header, config: &SuiteConfig, shard: &Option<String>, build: &Build) -> Result<()> {
    if existing.config != *config {
        bail!("{}: the checkpoint's configuration differs from this run's; --resume needs the same --config", path.display());
    }
    if existing.shard != *shard {
        bail!("{}: the checkpoint is of shard {:?}, this run is {:?}", path.display(), existing.shard, shard);
    }
    if existing.build != *build {
        bail!(
            "{}: finished points come from build {:?}, this binary is {:?}; resume with the same build or --restart",
            path.display(),
            existing.build,
            build
        );
    }
    Ok(())
}

impl Checkpoint {
    /// Opens the checkpoint of `dir` for a run of `config`/`shard` with `points` points, as `mode` says.
    pub fn open(dir: &Path, config: &SuiteConfig, shard: Option<Shard>, points: usize, meta: &RunMeta, mode: Mode) -> Result<Self> {
        let path = path(dir, shard);
        let shard_text = shard.map(|s| format!("{}/{}", s.index, s.count));
        let build = Build::of(meta);
        let existing = if path.exists() && mode != Mode::Restart { Some(read(&path)?) } else { None };
        let (runs, finished, file) = match (existing, mode) {
            (Some(c), Mode::Fresh) if c.finished.len() < c.header.points => bail!(
                "{} holds an unfinished run ({} of {} points done); pass --resume to continue it or --restart to discard it",
                path.display(),
                c.finished.len(),
                c.header.points
            ),
            (Some(c), Mode::Resume) => {
                check_resumable(&path, &c.header, config, &shard_text, &build)?;
                let file = File::options().write(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
                // Cut off a last line a kill left half-written, then append after the valid prefix.
                file.set_len(c.valid_len).with_context(|| format!("truncating {}", path.display()))?;
                (c.runs, c.finished, file)
            }
            // No checkpoint, a finished run, or --restart: start over.
            _ => (Vec::new(), BTreeMap::new(), Self::create(&path, config, &shard_text, &build, points)?),
        };
        let mut cp = Self { path, file, finished, runs };
        cp.append(&serde_json::json!({ "run": meta }))?;
        cp.runs.push(meta.clone());
        Ok(cp)
    }

    fn create(path: &Path, config: &SuiteConfig, shard: &Option<String>, build: &Build, points: usize) -> Result<File> {
        let header = Header { checkpoint: VERSION, config: config.clone(), shard: shard.clone(), build: build.clone(), points };
        let line = serde_json::to_string(&header)? + "\n";
        // The header is written atomically, so a checkpoint file always starts with a whole header.
        boltz_core::format::write_atomic(path, line.as_bytes())?;
        File::options().append(true).open(path).with_context(|| format!("opening {}", path.display()))
    }

    fn append(&mut self, value: &Value) -> Result<()> {
        use std::io::Seek;
        let line = serde_json::to_string(value)? + "\n";
        self.file.seek(std::io::SeekFrom::End(0))?;
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))
    }

    /// Records a finished point (synced to disk before returning).
    pub fn record(&mut self, point: FinishedPoint) -> Result<()> {
        let index = point.index().ok_or_else(|| anyhow!("a finished point without a point index"))?;
        self.append(&serde_json::to_value(&point)?)?;
        self.finished.insert(index, point);
        Ok(())
    }

    /// Removes the checkpoint once the result files derived from it are written: a finished run leaves
    /// only its result files (a later run starts fresh; `--resume` with nothing to resume starts fresh too).
    pub fn finish(self) -> Result<()> {
        std::fs::remove_file(&self.path).with_context(|| format!("removing {}", self.path.display()))?;
        boltz_core::format::sync_parent(&self.path);
        Ok(())
    }

    /// The checkpoint's file.
    pub fn file_path(&self) -> &Path {
        &self.path
    }
}
