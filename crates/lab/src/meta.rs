//! Run metadata recorded in every result file, and atomic JSON/CSV writing.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The git revision the binary was built from (`build.rs`), "unknown" outside a git checkout.
pub const BUILD_GIT_REV: &str = env!("BOLTZ_GIT_REV");
/// Whether tracked sources differed from [`BUILD_GIT_REV`] when the binary was built.
pub const BUILD_GIT_DIRTY: bool = matches!(env!("BOLTZ_GIT_DIRTY").as_bytes(), b"true");
/// `boltz --version`: package version, build revision and dirty flag, compiler.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("BOLTZ_GIT_REV"),
    ", dirty: ",
    env!("BOLTZ_GIT_DIRTY"),
    "; ",
    env!("BOLTZ_RUSTC_VERSION"),
    ")"
);

/// Who, where and what produced a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The git revision this binary was built from (embedded at build time; "unknown" outside a
    /// checkout), whatever directory it runs in.
    pub git_rev: String,
    /// Whether the source tree had uncommitted changes to tracked files when this binary was built.
    pub git_dirty: bool,
    /// Host name.
    pub machine: String,
    /// CPU model (from /proc/cpuinfo).
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Worker threads used.
    pub threads: usize,
    /// Compiler that built the harness.
    pub rustc: String,
    /// `RUSTFLAGS` at run time, if any.
    pub rustflags: String,
    /// Package version.
    pub version: String,
    /// Start time, seconds since the Unix epoch (UTC).
    pub started_unix: u64,
    /// Start time, ISO 8601 UTC.
    pub started_at: String,
    /// The backends this run can use and what they run on (threads, precision, library details).
    #[serde(default)]
    pub devices: Vec<boltz_core::DeviceInfo>,
}

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (proleptic Gregorian, UTC).
pub fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem / 60) % 60, rem % 60)
}

/// Device descriptions of the backends the harness drives.
fn devices(threads: usize) -> Vec<boltz_core::DeviceInfo> {
    use boltz_core::Backend;
    let mut out = vec![Backend::<f64>::device_info(&boltz_core::ReferenceBackend)];
    if let Ok(cpu) = boltz_cpu::CpuBackend::new(threads.max(1)) {
        out.push(Backend::<f64>::device_info(&cpu));
    }
    #[cfg(feature = "blas")]
    if let Ok(blas) = boltz_blas::BlasBackend::new(threads.max(1)) {
        out.push(Backend::<f64>::device_info(&blas));
    }
    // A GPU where one is (the probe is an error value, never a panic, without CUDA).
    #[cfg(feature = "cuda")]
    if let Ok(cuda) = boltz_cuda::CudaBackend::new() {
        out.push(Backend::<f64>::device_info(&cuda));
    }
    if let Ok(big) = boltz_bigfloat::BigFloatBackend::with_threads(64, threads.max(1)) {
        let mut info = Backend::<boltz_bigfloat::BigReal>::device_info(&big);
        info.details.insert("precision_bits".into(), "per experiment (see the rows)".into());
        out.push(info);
    }
    out
}

impl RunMeta {
    /// Collects the metadata of this run.
    pub fn collect(threads: usize) -> Self {
        let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let cpu = boltz_cpu::roofline::cpu_model();
        let machine = std::fs::read_to_string("/etc/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .or_else(|| command_output("hostname", &[]))
            .unwrap_or_else(|| "unknown".into());
        Self {
            git_rev: BUILD_GIT_REV.to_string(),
            git_dirty: BUILD_GIT_DIRTY,
            machine,
            cpu,
            cpus: boltz_cpu::threads::all_cores(),
            threads,
            rustc: env!("BOLTZ_RUSTC_VERSION").to_string(),
            rustflags: std::env::var("RUSTFLAGS").unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix,
            started_at: iso8601(started_unix),
            devices: devices(threads),
        }
    }
}

/// The machine's measured ceilings at one thread count (issue #30), recorded in every bench record: the
/// FMA peak per element type from a register-only kernel in the widest vector instruction set the CPU has,
/// and the memory bandwidth of a STREAM-style triad ([`boltz_cpu::roofline`]). A bench's `percent_of_peak`
/// is its GFLOP/s against the peak of its element type at its thread count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineCeiling {
    /// The vector instruction set of the peak kernel (`avx512f`, `avx2+fma`, `neon`, `portable`).
    pub isa: String,
    /// Threads of the measurement (those of the bench it is recorded with).
    pub threads: usize,
    /// FMA peak in f32, GFLOP/s (2 FLOPs per lane per fused multiply-add; best of 5 runs).
    pub fma_peak_gflops_f32: f64,
    /// FMA peak in f64, GFLOP/s.
    pub fma_peak_gflops_f64: f64,
    /// STREAM triad `a = b + s·c` over 3 × 64 MiB of f64, 24 bytes per element, GB/s (best of 5 runs).
    pub triad_gb_per_s: f64,
}

impl MachineCeiling {
    /// Measures the ceilings with `threads` threads (about half a second).
    pub fn measure(threads: usize) -> Self {
        let r = boltz_cpu::roofline::Roofline::measure(threads);
        Self {
            isa: r.isa.name().to_string(),
            threads: r.threads,
            fma_peak_gflops_f32: r.f32_gflops,
            fma_peak_gflops_f64: r.f64_gflops,
            triad_gb_per_s: r.triad_gb_per_s,
        }
    }

    /// The FMA peak of a precision's element type (`f32`, `f64`; none for `bits=N`).
    pub fn peak_gflops(&self, precision: crate::backends::Precision) -> Option<f64> {
        use crate::backends::Precision;
        match precision {
            Precision::F32 => Some(self.fma_peak_gflops_f32),
            Precision::F64 => Some(self.fma_peak_gflops_f64),
            Precision::Bits(_) => None,
        }
    }

    /// `gflops` as a percentage of the peak of `precision` on a host backend (none for CUDA, whose
    /// ceiling is the GPU's, and for `bits=N`).
    pub fn percent_of_peak(
        &self,
        backend: crate::backends::BackendKind,
        precision: crate::backends::Precision,
        gflops: f64,
    ) -> Option<f64> {
        if backend == crate::backends::BackendKind::Cuda {
            return None;
        }
        self.peak_gflops(precision).map(|p| 100.0 * gflops / p)
    }
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serialising results")?;
    boltz_core::format::write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// One CSV record (RFC 4180): fields joined by commas, a field quoted (inner quotes doubled) when it holds
/// a comma, a quote or a line break; `\n` ends the record.
fn csv_record(out: &mut String, fields: impl IntoIterator<Item = impl AsRef<str>>) {
    for (i, field) in fields.into_iter().enumerate() {
        let field = field.as_ref();
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push('\n');
}

/// CSV text (RFC 4180): the header, then one record per row; a field is quoted (inner quotes doubled)
/// when it holds a comma, a quote or a line break, and `\n` ends each record.
pub fn csv_text<R: IntoIterator<Item = impl AsRef<str>>>(header: &[&str], rows: impl IntoIterator<Item = R>) -> String {
    let mut out = String::new();
    csv_record(&mut out, header);
    for row in rows {
        csv_record(&mut out, row);
    }
    out
}

/// A JSON value as one CSV cell: a missing or null value is empty, a string its text, a number or boolean
/// its JSON text, a list or object its JSON text.
pub fn csv_cell(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Writes rows (JSON objects) as CSV (RFC 4180 quoting, [`csv_cell`] values), atomically. The columns are
/// the union of the rows' keys in first-seen order.
pub fn write_csv(path: &Path, rows: &[serde_json::Value]) -> Result<()> {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        if let Some(obj) = row.as_object() {
            for k in obj.keys() {
                if !columns.contains(&k.as_str()) {
                    columns.push(k);
                }
            }
        }
    }
    let text = csv_text(&columns, rows.iter().map(|row| columns.iter().map(|c| csv_cell(row.get(*c))).collect::<Vec<_>>()));
    boltz_core::format::write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_lists_and_strings() {
        let dir = std::env::temp_dir().join(format!("boltz-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        let rows = vec![serde_json::json!({"a": 1, "b": [[35, 35], [37, 100]], "c": "x,\"y\""}), serde_json::json!({"a": 2})];
        write_csv(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "a,b,c\n1,\"[[35,35],[37,100]]\",\"x,\"\"y\"\"\"\n2,,\n");
        assert_eq!(csv_text(&["x"], [["line\nbreak"], ["plain"]]), "x\n\"line\nbreak\"\nplain\n");
        // And a CSV parser reads the values back.
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rec: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(&rec[0][1], "[[35,35],[37,100]]");
        assert_eq!(&rec[0][2], "x,\"y\"");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_916_000), "2026-11-29T01:33:20Z");
    }
}
