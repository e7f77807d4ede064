//! Model exports: a built model with the data it memorizes, as files any reader of the format can
//! re-check (`boltz verify --model DIR`, `scripts/read_boltz.py`, Python `bf.load`). `boltz memorize
//! --export` writes one; `boltz reproduce --export-models` writes one per built row of the suite.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use boltz_bigfloat::BigReal;
use boltz_core::format::{self, Encoding};
use boltz_core::Dataset;

/// The files an export writes (and the only files an earlier export's directory may hold).
pub const EXPORT_FILES: [&str; 3] = ["model.exact.json", "model.safetensors", "dataset.safetensors"];

/// Checks, before any work, that `dir` can receive an export: absent, empty, or an earlier export (only
/// [`EXPORT_FILES`]), in a directory where a sibling can be created. Errors name `dir` after `flag`, the
/// option that chose it.
pub fn check_export_dir(dir: &Path, flag: &str) -> Result<()> {
    if dir.exists() {
        let entries = std::fs::read_dir(dir).with_context(|| format!("{flag} {}: not a readable directory", dir.display()))?;
        let foreign: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !EXPORT_FILES.contains(&n.as_str()))
            .collect();
        if !foreign.is_empty() {
            bail!("{flag} {}: holds files that are not an export ({}); choose a new or empty directory", dir.display(), foreign.join(", "));
        }
    }
    let staging = export_staging(dir);
    std::fs::create_dir_all(&staging)
        .and_then(|()| std::fs::remove_dir(&staging))
        .with_context(|| format!("{flag} {}: cannot create directories next to it", dir.display()))
}

/// The sibling directory an export is staged in before it is renamed into place.
fn export_staging(dir: &Path) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".into());
    dir.with_file_name(format!(".{name}.{}{}", std::process::id(), boltz_core::format::TEMP_MARKER))
}

/// Writes the export into a fresh staging directory and renames it into place, so `dir` holds exactly
/// this model's files (never a stale file of an earlier export); returns the files written.
pub fn export(dir: &Path, model: &boltz_core::Model<BigReal>, data: &Dataset<f64>) -> Result<Vec<PathBuf>> {
    let staging = export_staging(dir);
    let write = || -> Result<Vec<&'static str>> {
        std::fs::create_dir_all(&staging)?;
        let mut names = vec!["model.exact.json"];
        format::save_model(model, &staging.join("model.exact.json"), Encoding::Exact)?;
        if let Ok(m64) = model.convert::<f64>() {
            format::save_model(&m64, &staging.join("model.safetensors"), Encoding::F64)?;
            names.push("model.safetensors");
        }
        format::save_dataset(data, &staging.join("dataset.safetensors"), Encoding::F64)?;
        names.push("dataset.safetensors");
        Ok(names)
    };
    let names = match write() {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e.context(format!("exporting into {}", dir.display())));
        }
    };
    // An earlier export is moved aside (not merged into), then removed once the new one is in place.
    let old = dir.exists().then(|| PathBuf::from(format!("{}.old", staging.display())));
    if let Some(old) = &old {
        std::fs::rename(dir, old).with_context(|| format!("moving the earlier export {} aside", dir.display()))?;
    }
    if let Err(e) = std::fs::rename(&staging, dir) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old, dir);
        }
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e).with_context(|| format!("moving the export into {}", dir.display()));
    }
    if let Some(old) = &old {
        let _ = std::fs::remove_dir_all(old);
    }
    boltz_core::format::sync_parent(dir);
    Ok(names.iter().map(|n| dir.join(n)).collect())
}
