//! Embeds the build's provenance for run metadata and `boltz --version`: the compiler version, and the git
//! revision and dirty flag of the source tree this binary was built from (not of the directory it later
//! runs in). Outside a git checkout (a source tarball) the revision is "unknown".
use std::path::{Path, PathBuf};
use std::process::Command;

fn output(cmd: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(cmd).args(args).current_dir(dir).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(&rustc, &["--version"], Path::new(".")).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BOLTZ_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");

    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let workspace = manifest.ancestors().nth(2).unwrap_or(&manifest).to_path_buf();
    let rev = output("git", &["rev-parse", "HEAD"], &workspace);
    let dirty =
        rev.is_some() && output("git", &["status", "--porcelain", "--untracked-files=no"], &workspace).is_some_and(|s| !s.is_empty());
    println!("cargo:rustc-env=BOLTZ_GIT_REV={}", rev.as_deref().unwrap_or("unknown"));
    println!("cargo:rustc-env=BOLTZ_GIT_DIRTY={dirty}");

    // Re-run when the revision or the tracked sources change (so the dirty flag follows edits anywhere in
    // the workspace's crates, not only in this one).
    if let Some(git_dir) = output("git", &["rev-parse", "--absolute-git-dir"], &workspace) {
        let git_dir = PathBuf::from(git_dir);
        for f in ["HEAD", "index", "packed-refs", "refs"] {
            let p = git_dir.join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    for p in ["crates", "Cargo.toml", "Cargo.lock", "benches", "src", "examples"] {
        let p = workspace.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}
