//! One module per subcommand; shared argument checks here.

use std::path::Path;

use anyhow::{bail, Context, Result};

pub(crate) mod approximate;
pub(crate) mod bench;
pub(crate) mod memorize;
pub(crate) mod reproduce;
pub(crate) mod train;
pub(crate) mod verify;
pub(crate) mod workloads;

pub(crate) use approximate::approximate;
pub(crate) use bench::bench;
pub(crate) use memorize::memorize;
pub(crate) use reproduce::{check, plot, reproduce};
pub(crate) use train::train;
pub(crate) use verify::verify;
pub(crate) use workloads::{export, workloads};

/// Checks, before any work, that `path` (a result file to write) can be created: its directory exists or
/// can be created, and a file can be written there.
pub(crate) fn check_writable_file(path: &Path, flag: &str) -> Result<()> {
    if path.is_dir() {
        bail!("{flag} {}: is a directory; give a file name", path.display());
    }
    // A link's target is what gets written; a device is written through; other special files are refused.
    let path = match boltz_core::format::write_target(path).with_context(|| format!("{flag} {}", path.display()))? {
        boltz_core::format::WriteTarget::Device => return Ok(()),
        boltz_core::format::WriteTarget::File(p) => p,
    };
    let path = path.as_path();
    boltz_core::format::create_parent(path).with_context(|| format!("{flag} {}", path.display()))?;
    let probe = boltz_core::format::temp_sibling(path);
    std::fs::write(&probe, b"probe")
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| format!("{flag} {}: cannot write there", path.display()))
}
