//! `boltz check`: compares the result files of a re-run with committed ones, row by row (matched by
//! point index). Measured quantities must agree exactly. Timing fields (wall-clock seconds and
//! milliseconds, which depend on the machine and its load) are reported where they differ by more than a
//! factor, and count as failures only when the caller enforces that factor ([`Timings`]). The fields of a
//! hardware-float run at or below its model's fewest bits are machine-dependent ([`machine_dependent_runs`]):
//! reported where they differ, never failures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::backends::Precision;
use crate::suite::files::{load_results, ResultFile};

/// Whether a row field is a wall-clock timing (compared within a factor, not exactly): `seconds`,
/// `*_seconds`, `*_ms` and `latency_*`; for a nested field (`runs.2.latency_ms`), its last name decides.
pub fn is_timing(field: &str) -> bool {
    let field = field.rsplit('.').next().unwrap_or(field);
    field == "seconds" || field.ends_with("_seconds") || field.ends_with("_ms") || field.starts_with("latency_")
}

/// A row's fields by path: nested objects and lists of objects (a row's `runs`) are opened into
/// `runs.0.accuracy`, `runs.0.latency_ms`, …, so each nested value is compared on its own (timings
/// within the factor, the rest exactly); other lists (`fewest_bits_holds_at`) are one value.
fn fields_by_path(row: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(&key(k), x, out)),
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
                a.iter().enumerate().for_each(|(i, x)| walk(&key(&i.to_string()), x, out));
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", row, &mut out);
    out
}

/// How timing fields are judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timings {
    /// Timings differing by more than this ratio (either direction) are listed; `inf` lists none.
    pub factor: f64,
    /// Whether a listed timing is a failure (`boltz check --time-factor F`), or only information (the
    /// default: another machine, or the same one under load, runs at another speed).
    pub enforced: bool,
}

impl Timings {
    /// The factor beyond which an unenforced comparison lists a timing.
    pub const REPORTED_BEYOND: f64 = 5.0;

    /// Timings listed beyond [`Self::REPORTED_BEYOND`], never failing.
    pub fn reported() -> Self {
        Self { factor: Self::REPORTED_BEYOND, enforced: false }
    }

    /// Timings beyond `factor` fail (`inf`: never). Errors for a factor below 1 or NaN.
    pub fn enforced(factor: f64) -> Result<Self> {
        if factor.is_nan() || factor < 1.0 {
            bail!("--time-factor must be a number ≥ 1 (inf: timings never fail), got {factor}");
        }
        Ok(Self { factor, enforced: true })
    }
}

/// One disagreement between the committed and the re-run results.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// Experiment.
    pub experiment: String,
    /// Point index (`None` for file-level differences).
    pub point: Option<u64>,
    /// Field name (or what is missing).
    pub field: String,
    /// The committed value.
    pub committed: String,
    /// The re-run's value.
    pub rerun: String,
    /// Why it counts as a difference.
    pub why: String,
    /// Whether it is a timing field's (a failure only where [`Timings::enforced`]).
    pub timing: bool,
    /// Whether it is a machine-dependent run's field ([`machine_dependent_runs`]; never a failure).
    pub machine: bool,
}

/// What a comparison found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Rows compared.
    pub rows: usize,
    /// Exact fields compared.
    pub exact_fields: usize,
    /// Timing fields compared.
    pub timing_fields: usize,
    /// Fields of machine-dependent runs compared ([`machine_dependent_runs`]; not among the exact ones).
    pub machine_fields: usize,
    /// Disagreements: exact fields, missing rows and files, and timings beyond the factor.
    pub differences: Vec<Difference>,
    /// How timings were judged.
    pub timings: Option<Timings>,
}

impl Report {
    /// Differences in exact fields, rows or files: always failures.
    pub fn exact_differences(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| !d.timing && !d.machine)
    }

    /// Fields of machine-dependent runs that differ: information, never failures.
    pub fn machine_differences(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| d.machine)
    }

    /// Timing fields beyond the factor.
    pub fn timing_differences(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| d.timing)
    }

    /// Whether the comparison passes: no exact difference, and no timing beyond an enforced factor.
    pub fn passes(&self) -> bool {
        let enforced = self.timings.is_some_and(|t| t.enforced);
        self.exact_differences().next().is_none() && (!enforced || self.timing_differences().next().is_none())
    }

    /// Exact fields that agree.
    pub fn exact_agreeing(&self) -> usize {
        self.exact_fields - self.exact_differences().filter(|d| d.point.is_some() && d.field != "row").count()
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 40 {
                format!("{}…", s.chars().take(39).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// The indices of a row's `runs` whose outcome depends on the machine: runs in hardware floats on the
/// cpu, blas or cuda backends at or below the row's fewest bits. Those bits promise exact decoding under
/// correctly rounded p-bit arithmetic (the bigfloat backend), not under a kernel's summation order, FMA
/// contraction and vector width, which change with the CPU (AVX2 or AVX-512) and the GEMM library: at or
/// below the fewest bits, a different rounding sequence can decode a token more or fewer. The reference
/// backend (scalar IEEE arithmetic in a fixed order) is the same everywhere and stays exact; a row without
/// a fewest-bits search keeps every run exact.
pub fn machine_dependent_runs(row: &Value) -> BTreeSet<usize> {
    let Some(fewest) = row.get("fewest_bits").and_then(Value::as_u64) else {
        return BTreeSet::new();
    };
    let runs = row.get("runs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    runs.iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.get("backend").and_then(Value::as_str), Some("cpu" | "blas" | "cuda")))
        .filter(|(_, r)| {
            r.get("precision").and_then(Value::as_str).and_then(|p| p.parse::<Precision>().ok()).is_some_and(|p| p.bits() <= fewest)
        })
        .map(|(i, _)| i)
        .collect()
}

fn compare_rows(exp: &str, point: u64, a: &Value, b: &Value, timings: Timings, report: &mut Report) {
    if !(a.is_object() && b.is_object()) {
        return;
    }
    let machine_runs = machine_dependent_runs(a);
    let of_machine_run = |field: &str| {
        let mut parts = field.split('.');
        parts.next() == Some("runs") && parts.next().and_then(|i| i.parse().ok()).is_some_and(|i: usize| machine_runs.contains(&i))
    };
    let (a, b) = (fields_by_path(a), fields_by_path(b));
    let fields: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for f in fields {
        let (x, y) = (a.get(f.as_str()), b.get(f.as_str()));
        let timing = is_timing(f);
        let diff = |why: String| Difference {
            experiment: exp.into(),
            point: Some(point),
            field: f.clone(),
            committed: text(x),
            rerun: text(y),
            why,
            timing,
            machine: false,
        };
        if timing {
            report.timing_fields += 1;
            match (x.and_then(Value::as_f64), y.and_then(Value::as_f64)) {
                (Some(p), Some(q)) if p > 0.0 && q > 0.0 => {
                    let ratio = (q / p).max(p / q);
                    if ratio > timings.factor {
                        report.differences.push(diff(format!("timing off by {ratio:.1}× (beyond {}×)", timings.factor)));
                    }
                }
                // Zero or missing timings (e.g. an error where the other run measured) must match exactly.
                _ if x != y && !(x.and_then(Value::as_f64) == Some(0.0) || y.and_then(Value::as_f64) == Some(0.0)) => {
                    report.differences.push(diff("timing present in one run only".into()));
                }
                _ => {}
            }
        } else if of_machine_run(f) {
            report.machine_fields += 1;
            if x != y {
                report
                    .differences
                    .push(Difference { machine: true, ..diff("differs (hardware floats at or below the fewest bits)".into()) });
            }
        } else {
            report.exact_fields += 1;
            if x != y {
                report.differences.push(diff("differs (exact field)".into()));
            }
        }
    }
}

fn file_difference(exp: &str, field: &str, committed: String, rerun: String, why: &str) -> Difference {
    Difference {
        experiment: exp.into(),
        point: None,
        field: field.into(),
        committed,
        rerun,
        why: why.into(),
        timing: false,
        machine: false,
    }
}

/// Compares every result file of `committed` with the same file in `rerun`. Both must hold results of
/// one configuration (else an error, [`SameConfig`] says which); every committed experiment must be
/// present in the re-run.
pub fn compare_dirs(committed: &Path, rerun: &Path, timings: Timings) -> Result<Report> {
    let old = load_results(committed)?;
    let new = load_results(rerun)?;
    if old.is_empty() {
        bail!("{}: no result files to compare against", committed.display());
    }
    let mut report = Report { timings: Some(timings), ..Report::default() };
    for (exp, a) in &old {
        let Some(b) = new.get(exp) else {
            report.differences.push(file_difference(
                exp,
                "file",
                format!("{exp}.json"),
                "(absent)".into(),
                "experiment missing from the re-run",
            ));
            continue;
        };
        if a.config != b.config {
            return Err(anyhow::Error::new(SameConfig { experiment: exp.clone() }));
        }
        compare_files(exp, a, b, timings, &mut report);
    }
    for exp in new.keys().filter(|e| !old.contains_key(*e)) {
        report.differences.push(file_difference(
            exp,
            "file",
            "(absent)".into(),
            format!("{exp}.json"),
            "experiment not in the committed results",
        ));
    }
    Ok(report)
}

/// The error of comparing results of two configurations.
#[derive(Debug, thiserror::Error)]
#[error("{experiment}: the re-run used a different configuration than the committed results; re-run with theirs (boltz check reruns it for you without --with)")]
pub struct SameConfig {
    /// The first experiment whose configurations differ.
    pub experiment: String,
}

fn compare_files(exp: &str, a: &ResultFile, b: &ResultFile, timings: Timings, report: &mut Report) {
    let index = |f: &ResultFile| -> std::collections::BTreeMap<u64, Value> {
        f.rows.iter().filter_map(|r| Some((r.get("point")?.as_u64()?, r.clone()))).collect()
    };
    let (ra, rb) = (index(a), index(b));
    for (p, row) in &ra {
        match rb.get(p) {
            Some(other) => {
                report.rows += 1;
                compare_rows(exp, *p, row, other, timings, report);
            }
            None => report.differences.push(Difference {
                experiment: exp.into(),
                point: Some(*p),
                field: "row".into(),
                committed: "present".into(),
                rerun: "(absent)".into(),
                why: "point missing from the re-run".into(),
                timing: false,
                machine: false,
            }),
        }
    }
    for p in rb.keys().filter(|p| !ra.contains_key(p)) {
        report.differences.push(Difference {
            experiment: exp.into(),
            point: Some(*p),
            field: "row".into(),
            committed: "(absent)".into(),
            rerun: "present".into(),
            why: "point not in the committed results".into(),
            timing: false,
            machine: false,
        });
    }
}

/// The report: a table of the exact differences, a table of the timings beyond the factor (marked as
/// failures or as information), and the summary line "reproduced K of M exact fields".
pub fn render(report: &Report) -> String {
    let table = |title: &str, rows: Vec<&Difference>| -> String {
        if rows.is_empty() {
            return String::new();
        }
        let mut out =
            format!("{title}\n{:<14} {:>6}  {:<28} {:<24} {:<24} {}\n", "experiment", "point", "field", "committed", "re-run", "why");
        for d in rows {
            let point = d.point.map_or("-".into(), |p| p.to_string());
            out += &format!("{:<14} {:>6}  {:<28} {:<24} {:<24} {}\n", d.experiment, point, d.field, d.committed, d.rerun, d.why);
        }
        out
    };
    let timings = report.timings.unwrap_or_else(Timings::reported);
    let exact: Vec<&Difference> = report.exact_differences().collect();
    let timing: Vec<&Difference> = report.timing_differences().collect();
    let mut out = table("Exact fields, rows and files that differ:", exact.clone());
    let timing_title = match timings.enforced {
        true => format!("Timings beyond the allowed {}× (failures):", timings.factor),
        false => format!(
            "Timings beyond {}× (information only: speed depends on the machine and its load; --time-factor F makes them fail):",
            timings.factor
        ),
    };
    out += &table(&timing_title, timing.clone());
    let machine: Vec<&Difference> = report.machine_differences().collect();
    out += &table(
        "Runs in hardware floats at or below the model's fewest bits that differ (information only: their rounding depends on the CPU's kernels):",
        machine.clone(),
    );
    let machine_note = match report.machine_fields {
        0 => String::new(),
        n => format!("; {n} fields of hardware-float runs at or below the fewest bits, {} differ (not checked)", machine.len()),
    };
    out += &format!(
        "{} rows compared: reproduced {} of {} exact fields{}; {} timing fields, {} beyond {}×{}{machine_note}\n",
        report.rows,
        report.exact_agreeing(),
        report.exact_fields,
        match exact.len() {
            0 => String::new(),
            n => format!(" ({n} differences)"),
        },
        report.timing_fields,
        timing.len(),
        timings.factor,
        if timings.enforced { "" } else { " (not checked)" },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timings_within_the_factor_pass_and_exact_fields_must_match() {
        let mut r = Report::default();
        let a = json!({"point": 0, "fewest_bits": 25, "seconds": 1.0, "latency_cpu_f64_ms": 2.0});
        let b = json!({"point": 0, "fewest_bits": 25, "seconds": 2.5, "latency_cpu_f64_ms": 0.9});
        let three = Timings::enforced(3.0).expect("a factor ≥ 1");
        compare_rows("capacity", 0, &a, &b, three, &mut r);
        assert!(r.differences.is_empty(), "{:?}", r.differences);
        assert_eq!((r.exact_fields, r.timing_fields), (2, 2));
        let c = json!({"point": 0, "fewest_bits": 26, "seconds": 4.0, "latency_cpu_f64_ms": 2.0});
        compare_rows("capacity", 0, &a, &c, three, &mut r);
        let fields: Vec<&str> = r.differences.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["fewest_bits", "seconds"]);
        r.timings = Some(three);
        assert!(render(&r).contains("fewest_bits"));
    }

    #[test]
    fn timing_names() {
        assert!(is_timing("seconds") && is_timing("build_seconds") && is_timing("latency_cpu_f64_ms"));
        assert!(!is_timing("fewest_bits") && !is_timing("lambda"));
        assert!(is_timing("runs.2.latency_ms") && !is_timing("runs.2.accuracy"));
    }

    /// A row's `runs` list is compared entry by entry: latencies within the factor, accuracies exactly.
    #[test]
    fn nested_runs_compare_field_by_field() {
        let run = |acc: f64, ms: f64| json!({"backend": "cpu", "precision": "f64", "accuracy": acc, "latency_ms": ms});
        let a = json!({"point": 0, "holds": [[3, 5]], "runs": [run(1.0, 2.0), run(0.5, 1.0)]});
        let b = json!({"point": 0, "holds": [[3, 5]], "runs": [run(1.0, 4.0), run(0.5, 0.5)]});
        let mut r = Report::default();
        let three = Timings::enforced(3.0).expect("a factor ≥ 1");
        compare_rows("capacity", 0, &a, &b, three, &mut r);
        assert!(r.differences.is_empty(), "{:?}", r.differences);
        assert_eq!(r.timing_fields, 2);
        let c = json!({"point": 0, "holds": [[3, 6]], "runs": [run(1.0, 2.0), run(0.25, 1.0)]});
        compare_rows("capacity", 0, &a, &c, three, &mut r);
        let fields: Vec<&str> = r.differences.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["holds", "runs.1.accuracy"]);
    }

    /// A cpu/blas/cuda run at or below the row's fewest bits is machine-dependent: its accuracy may differ
    /// (reported, not failing); above them, and on the reference backend, it is exact.
    #[test]
    fn runs_at_or_below_the_fewest_bits_in_hardware_floats_are_machine_dependent() {
        let run = |backend: &str, precision: &str, acc: f64| json!({"backend": backend, "precision": precision, "accuracy": acc});
        let row = |acc: f64| {
            json!({"point": 0, "fewest_bits": 24, "runs": [
                run("cpu", "f32", acc), run("blas", "f32", acc), run("reference", "f32", acc), run("cpu", "f64", acc), run("bigfloat", "bits=24", acc)
            ]})
        };
        assert_eq!(machine_dependent_runs(&row(1.0)), BTreeSet::from([0, 1]));
        assert!(machine_dependent_runs(&json!({"runs": [run("cpu", "f32", 0.5)]})).is_empty(), "no fewest bits: exact");
        let mut r = Report { timings: Some(Timings::reported()), ..Report::default() };
        compare_rows("capacity", 0, &row(0.9875), &row(1.0), Timings::reported(), &mut r);
        let exact: Vec<&str> = r.exact_differences().map(|d| d.field.as_str()).collect();
        let machine: Vec<&str> = r.machine_differences().map(|d| d.field.as_str()).collect();
        assert_eq!(exact, ["runs.2.accuracy", "runs.3.accuracy", "runs.4.accuracy"]);
        assert_eq!(machine, ["runs.0.accuracy", "runs.1.accuracy"]);
        assert_eq!(r.machine_fields, 6, "backend, precision and accuracy of two runs");
        let mut only_machine = Report { timings: Some(Timings::reported()), ..Report::default() };
        let below = |acc: f64| json!({"point": 0, "fewest_bits": 24, "runs": [run("cpu", "f32", acc)]});
        compare_rows("capacity", 0, &below(0.9875), &below(1.0), Timings::reported(), &mut only_machine);
        assert!(only_machine.passes());
        let text = render(&only_machine);
        assert!(
            text.contains("reproduced 2 of 2 exact fields")
                && text.contains("3 fields of hardware-float runs")
                && text.contains("1 differ"),
            "{text}"
        );
    }

    /// Timings beyond the factor fail only where the factor is enforced; exact fields always.
    #[test]
    fn timings_fail_only_when_enforced() {
        let a = json!({"point": 0, "fewest_bits": 25, "seconds": 1.0});
        let slow = json!({"point": 0, "fewest_bits": 25, "seconds": 60.0});
        for (timings, passes) in [
            (Timings::reported(), true),
            (Timings::enforced(f64::INFINITY).expect("inf is allowed"), true),
            (Timings::enforced(5.0).expect("a factor ≥ 1"), false),
        ] {
            let mut r = Report { timings: Some(timings), ..Report::default() };
            compare_rows("capacity", 0, &a, &slow, timings, &mut r);
            assert_eq!(r.passes(), passes, "{timings:?}: {:?}", r.differences);
            assert_eq!(r.exact_agreeing(), 2, "point and fewest_bits");
            let text = render(&r);
            assert!(text.contains("reproduced 2 of 2 exact fields"), "{text}");
            assert_eq!(text.contains("information only"), !timings.enforced && !r.differences.is_empty(), "{text}");
        }
        let other = json!({"point": 0, "fewest_bits": 26, "seconds": 1.0});
        let mut r = Report { timings: Some(Timings::reported()), ..Report::default() };
        compare_rows("capacity", 0, &a, &other, Timings::reported(), &mut r);
        assert!(!r.passes());
        assert!(render(&r).contains("reproduced 1 of 2 exact fields (1 differences)"), "{}", render(&r));
        for bad in [0.5, f64::NAN] {
            assert!(Timings::enforced(bad).is_err(), "{bad}");
        }
    }
}
