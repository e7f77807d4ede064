//! An output directory held by one writer: created and checked writable before any work starts, locked
//! against a second concurrent `boltz` writing into it, and cleared of temporary files that killed runs
//! left behind.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The lock file's name inside an output directory.
pub const LOCK_FILE: &str = ".boltz.lock";

/// An output directory locked for this process (the lock is released on drop, and by the OS when the
/// process dies, even by `kill -9`).
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    _lock: File,
}

impl OutDir {
    /// Creates `path` if needed, checks that files can be created in it, takes its lock (refusing when
    /// another process holds it) and removes temporary files of processes that no longer exist.
    pub fn lock(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).with_context(|| format!("creating the output directory {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("{}: the output directory is not writable", path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "{}: another boltz process is writing into this directory (it holds {}); wait for it or use another --out",
                path.display(),
                lock_path.display()
            ),
            Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", lock_path.display())),
        }
        // Writable for real files, not only for opening the lock: write and remove a probe.
        let probe = boltz_core::format::temp_sibling(&path.join("write-probe"));
        std::fs::write(&probe, b"probe")
            .and_then(|()| std::fs::remove_file(&probe))
            .with_context(|| format!("{}: cannot create files in the output directory", path.display()))?;
        let dir = Self { path: path.to_path_buf(), _lock: lock };
        dir.remove_stale_temps();
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes temporary files (see [`boltz_core::format::temp_sibling`]) whose process is gone: a run
    /// killed during an atomic write leaves one; holding the lock, no live writer of ours owns them.
    fn remove_stale_temps(&self) {
        let Ok(entries) = std::fs::read_dir(&self.path) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(boltz_core::format::stale_temp_pid) else { continue };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_and_stale_temps_removed() {
        let dir = std::env::temp_dir().join(format!("boltz-outdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A temp file of a process that cannot exist (pid above the kernel's maximum) and one of ours.
        let stale = dir.join(format!(".capacity.json.4294967295{}.json", boltz_core::format::TEMP_MARKER));
        std::fs::write(&stale, "partial").unwrap();
        let ours = boltz_core::format::temp_sibling(&dir.join("x.json"));
        std::fs::write(&ours, "in progress").unwrap();
        let held = OutDir::lock(&dir).unwrap();
        assert!(!stale.exists(), "a dead process's temp file is removed");
        assert!(ours.exists(), "a live process's temp file is kept");
        // flock locks belong to the open file description: a second open in this process conflicts too.
        let err = OutDir::lock(&dir).unwrap_err().to_string();
        assert!(err.contains("another boltz process"), "{err}");
        drop(held);
        OutDir::lock(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
