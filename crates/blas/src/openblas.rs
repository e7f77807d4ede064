//! Which OpenBLAS kernel runs, and choosing a safe one.
//!
//! Debian's OpenBLAS 0.3.21 is built with `DYNAMIC_ARCH`: it picks its kernel ("core") from the CPU when
//! the library loads, or from `OPENBLAS_CORETYPE` if that is set. It does not recognise some current
//! CPUs and then silently falls back to the SSE3 "Prescott" kernel, 4–5× below the machine's ceiling.
//! The core is read once, at load time, so a process cannot change its own; the rules here are:
//!
//! 1. **Never override** a value that is already set (some machines set it on purpose, for correctness).
//! 2. When it is unset, the right value follows from the CPU's real features: AVX-512F → `SkylakeX`,
//!    AVX2 → `Haswell`, otherwise leave it to OpenBLAS ([`recommended_coretype`]).
//! 3. **Not under valgrind**: valgrind cannot decode AVX-512 and the SkylakeX kernels die with SIGILL
//!    there; its own auto-detection (Haswell) is fine ([`under_valgrind`]).
//!
//! The scripts (`scripts/openblas-env.sh`) apply these rules before cargo starts; binaries that may be
//! started directly (the `boltz` CLI, the benches) call [`reexec_with_coretype`] first thing in `main`,
//! which re-executes the process once with the variable set. [`CoreReport`] says what actually runs
//! and [`CoreReport::warning`] flags a generic kernel on a CPU that has AVX2/AVX-512.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use serde::{Deserialize, Serialize};

// Linked through openblas-src (`system`, pkg-config `openblas`).
extern "C" {
    fn openblas_get_corename() -> *const c_char;
    fn openblas_get_config() -> *const c_char;
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_num_threads() -> c_int;
}

/// The environment variable OpenBLAS reads at load time.
pub const CORETYPE_VAR: &str = "OPENBLAS_CORETYPE";
/// Set by [`reexec_with_coretype`] in the re-executed child, so that it never loops.
const REEXEC_MARK: &str = "BOLTZ_OPENBLAS_REEXEC";

/// Kernels that use at most SSE3/SSE4: slow on a CPU with AVX2 or AVX-512.
const GENERIC_CORES: [&str; 14] = [
    "prescott",
    "core2",
    "penryn",
    "dunnington",
    "nehalem",
    "atom",
    "katmai",
    "coppermine",
    "northwood",
    "banias",
    "opteron",
    "barcelona",
    "generic",
    "bobcat",
];

/// The kernel OpenBLAS runs (`openblas_get_corename()`).
pub fn corename() -> String {
    // SAFETY: OpenBLAS returns a pointer to a static NUL-terminated string.
    unsafe { c_string(openblas_get_corename()) }
}

/// OpenBLAS's build description (`openblas_get_config()`), e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH …`.
pub fn config() -> String {
    // SAFETY: as above.
    unsafe { c_string(openblas_get_config()) }
}

/// Sets OpenBLAS's (process-wide) thread count (the backend sets 1; the ceiling example sets more).
pub fn set_threads(threads: usize) {
    let n = c_int::try_from(threads).unwrap_or(c_int::MAX);
    // SAFETY: plain setter; OpenBLAS caps the value at its compiled maximum.
    unsafe { openblas_set_num_threads(n) }
}

/// OpenBLAS's current thread count.
pub fn threads() -> usize {
    // SAFETY: plain getter.
    usize::try_from(unsafe { openblas_get_num_threads() }).unwrap_or(1)
}

unsafe fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        return "unknown".into();
    }
    // SAFETY: the caller passes a valid NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().trim().to_string()
}

/// The CPU's widest vector extension that OpenBLAS has kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VectorIsa {
    /// AVX-512F.
    Avx512,
    /// AVX2 (+FMA).
    Avx2,
    /// Neither (or not x86-64).
    Older,
}

/// What this CPU supports.
pub fn cpu_isa() -> VectorIsa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return VectorIsa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return VectorIsa::Avx2;
        }
    }
    VectorIsa::Older
}

/// True when this process runs under valgrind (its preload library is in `LD_PRELOAD`).
pub fn under_valgrind() -> bool {
    std::env::var("LD_PRELOAD").is_ok_and(|p| p.contains("vgpreload") || p.contains("valgrind"))
}

/// The core to request when `OPENBLAS_CORETYPE` is unset: `SkylakeX` on AVX-512, `Haswell` on AVX2,
/// none otherwise (leave OpenBLAS's detection alone) — and none under valgrind.
pub fn recommended_coretype(isa: VectorIsa, valgrind: bool) -> Option<&'static str> {
    match (isa, valgrind) {
        (_, true) => None,
        (VectorIsa::Avx512, false) => Some("SkylakeX"),
        (VectorIsa::Avx2, false) => Some("Haswell"),
        (VectorIsa::Older, false) => None,
    }
}

/// Where the running core came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoreSource {
    /// `OPENBLAS_CORETYPE` was set by the user or machine before anything of ours ran.
    Preset,
    /// Set by the project (scripts or re-exec) from the CPU's features.
    Chosen,
    /// Unset: OpenBLAS's own detection.
    AutoDetected,
}

/// What kernel OpenBLAS runs, why, and whether that is a problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreReport {
    /// `openblas_get_corename()`.
    pub corename: String,
    /// `openblas_get_config()`.
    pub config: String,
    /// `OPENBLAS_CORETYPE` as this process saw it.
    pub coretype_env: Option<String>,
    /// Where the core came from.
    pub source: CoreSource,
    /// The CPU's vector extension.
    pub cpu_isa: VectorIsa,
    /// Whether the process runs under valgrind.
    pub valgrind: bool,
}

impl CoreReport {
    /// The report for this process.
    pub fn current() -> Self {
        let coretype_env = std::env::var(CORETYPE_VAR).ok();
        let chosen = std::env::var(REEXEC_MARK).is_ok() || std::env::var("BOLTZ_OPENBLAS_CHOSEN").is_ok();
        let source = match (&coretype_env, chosen) {
            (None, _) => CoreSource::AutoDetected,
            (Some(_), true) => CoreSource::Chosen,
            (Some(_), false) => CoreSource::Preset,
        };
        Self { corename: corename(), config: config(), coretype_env, source, cpu_isa: cpu_isa(), valgrind: under_valgrind() }
    }

    /// True when OpenBLAS runs an SSE-era kernel on a CPU that has AVX2 or AVX-512.
    pub fn is_generic_on_modern_cpu(&self) -> bool {
        let generic = GENERIC_CORES.contains(&self.corename.to_ascii_lowercase().as_str());
        generic && self.cpu_isa != VectorIsa::Older
    }

    /// A loud warning when the kernel is far below what the CPU can do (see the module docs).
    pub fn warning(&self) -> Option<String> {
        if !self.is_generic_on_modern_cpu() {
            return None;
        }
        let fix = match recommended_coretype(self.cpu_isa, false) {
            Some(core) => format!("set {CORETYPE_VAR}={core} before starting the program (scripts/openblas-env.sh does it)"),
            None => "set OPENBLAS_CORETYPE to a core your CPU supports".into(),
        };
        let why = match self.source {
            CoreSource::Preset => format!("{CORETYPE_VAR}={:?} was preset and is kept", self.coretype_env.as_deref().unwrap_or("")),
            _ => "OpenBLAS did not recognise this CPU".into(),
        };
        Some(format!(
            "WARNING: OpenBLAS runs the generic {:?} kernel on a CPU with {:?} ({why}); BLAS results will be 4-5x slower than the \
             machine allows. To fix: {fix}.",
            self.corename, self.cpu_isa
        ))
    }
}

/// Re-executes the current program once with `OPENBLAS_CORETYPE` set to [`recommended_coretype`] when
/// it is unset, so that OpenBLAS loads with the right kernel. Call it first thing in `main`. Does
/// nothing when the variable is set (even to an empty value), under valgrind, on CPUs without
/// AVX2/AVX-512, or in the re-executed child; if the exec itself fails, prints why and returns (the
/// program then runs with OpenBLAS's own choice and [`CoreReport::warning`] says so).
pub fn reexec_with_coretype() {
    if std::env::var_os(CORETYPE_VAR).is_some() || std::env::var_os(REEXEC_MARK).is_some() {
        return;
    }
    let Some(core) = recommended_coretype(cpu_isa(), under_valgrind()) else { return };
    let Ok(exe) = std::env::current_exe() else { return };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).env(CORETYPE_VAR, core).env(REEXEC_MARK, "1").exec();
        eprintln!("boltz: could not re-execute with {CORETYPE_VAR}={core}: {err}");
    }
    #[cfg(not(unix))]
    let _ = (exe, core);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_follows_features_and_spares_valgrind() {
        assert_eq!(recommended_coretype(VectorIsa::Avx512, false), Some("SkylakeX"));
        assert_eq!(recommended_coretype(VectorIsa::Avx2, false), Some("Haswell"));
        assert_eq!(recommended_coretype(VectorIsa::Older, false), None);
        assert_eq!(recommended_coretype(VectorIsa::Avx512, true), None);
    }

    #[test]
    fn generic_kernel_on_modern_cpu_warns() {
        let report = |corename: &str, isa| CoreReport {
            corename: corename.into(),
            config: String::new(),
            coretype_env: None,
            source: CoreSource::AutoDetected,
            cpu_isa: isa,
            valgrind: false,
        };
        let w = report("Prescott", VectorIsa::Avx512).warning().expect("Prescott on AVX-512 must warn");
        assert!(w.contains("SkylakeX") && w.contains("Prescott"), "{w}");
        assert!(report("SkylakeX", VectorIsa::Avx512).warning().is_none());
        assert!(report("Haswell", VectorIsa::Avx2).warning().is_none());
        assert!(report("Prescott", VectorIsa::Older).warning().is_none());
    }

    #[test]
    fn the_library_reports_a_core() {
        let r = CoreReport::current();
        assert!(!r.corename.is_empty() && r.config.contains("OpenBLAS"), "{r:?}");
    }
}
