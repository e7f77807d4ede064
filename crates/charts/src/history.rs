//! The bench-history charts: wall-clock ratios over commits, and throughput as a fraction of the machine's peak.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use serde_json::Value;

use crate::style::{Dash, Hue, Look, Marker};
use crate::{Axis, Chart, Panel, Series};

/// One recorded run of `scripts/bench-track.sh --record`.
pub(crate) struct HistoryRun {
    label: String,
    dirty: bool,
    ratios: BTreeMap<String, f64>,
    gflops: BTreeMap<String, f64>,
}

pub(crate) fn parse_history(jsonl: &str) -> Result<Vec<HistoryRun>> {
    let mut runs = Vec::new();
    for (i, line) in jsonl.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| anyhow!("history line {}: {e}", i + 1))?;
        let ratios = v.get("ratios").and_then(Value::as_object).ok_or_else(|| anyhow!("history line {}: no \"ratios\" object", i + 1))?;
        let rev = v.get("git_rev").and_then(Value::as_str).unwrap_or("?");
        let dirty = if v.get("dirty").and_then(Value::as_bool) == Some(true) { "+" } else { "" };
        let date = v.get("time").and_then(Value::as_str).map_or("", |t| t.get(5..10).unwrap_or(""));
        let gflops = v
            .get("benches")
            .and_then(Value::as_object)
            .map(|b| b.iter().filter_map(|(k, e)| Some((k.clone(), e.get("gflops")?.as_f64()?))).collect())
            .unwrap_or_default();
        // Every ratio is a positive finite number: a string or a ratio ≤ 0 is a broken record, not a point.
        let mut parsed = BTreeMap::new();
        for (k, r) in ratios {
            match r.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => {
                    parsed.insert(k.clone(), x);
                }
                _ => anyhow::bail!("history line {}: ratio {k:?} is {r}, not a positive number", i + 1),
            }
        }
        runs.push(HistoryRun { label: format!("{rev}{dirty}\n{date}"), dirty: !dirty.is_empty(), ratios: parsed, gflops });
    }
    if runs.is_empty() {
        anyhow::bail!("the history has no runs");
    }
    Ok(runs)
}

/// The committed ratio baseline (`results/bench-baselines/ratios.json`): ratios and the `lower` factor
/// below which `scripts/bench-track.sh` fails.
pub struct Baseline {
    /// Ratio name → committed value.
    pub ratios: BTreeMap<String, f64>,
    /// The failing factor (0.33: a 3× loss).
    pub lower: f64,
}

impl Baseline {
    /// Reads the baseline JSON.
    pub fn parse(text: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text)?;
        let ratios = v.get("ratios").and_then(Value::as_object).ok_or_else(|| anyhow!("no \"ratios\" object"))?;
        Ok(Self {
            ratios: ratios.iter().filter_map(|(k, r)| Some((k.clone(), r.as_f64()?))).collect(),
            lower: v.get("lower").and_then(Value::as_f64).ok_or_else(|| anyhow!("no \"lower\" factor"))?,
        })
    }
}

/// `speedup/<backend>/<workload>/<dtype>,threads=<t>` → its parts.
pub(crate) fn speedup_parts(name: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = name.strip_prefix("speedup/")?;
    let mut it = rest.splitn(3, '/');
    let (backend, workload, tail) = (it.next()?, it.next()?, it.next()?);
    let (dtype, threads) = tail.split_once(",threads=")?;
    Some((backend, workload, dtype, threads))
}

/// The wall-clock history (`results/bench-history.jsonl`) as a chart: every tracked ratio divided by its
/// committed baseline, one panel per workload (and the build ratio), over the recorded runs labelled by
/// commit and date, with the baseline (1) and the failing threshold (`lower`). Two threads are the
/// tracked configuration (one-thread ratios stay in the file).
pub fn history_chart(jsonl: &str, baseline: &Baseline) -> Result<Chart> {
    let runs = parse_history(jsonl)?;
    let dirty = runs.iter().filter(|r| r.dirty).count();
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    let names: Vec<String> = {
        let mut v: Vec<String> = runs.iter().flat_map(|r| r.ratios.keys().cloned()).collect();
        v.sort();
        v.dedup();
        v.into_iter().filter(|n| !n.ends_with("threads=1")).collect()
    };
    let mut groups: Vec<String> = names.iter().map(|n| speedup_parts(n).map_or("build".to_string(), |p| p.1.to_string())).collect();
    groups.dedup();
    let mut seen = std::collections::BTreeSet::new();
    groups.retain(|g| seen.insert(g.clone()));
    let mut panels = Vec::new();
    for g in &groups {
        let mut series = Vec::new();
        for n in names.iter().filter(|n| speedup_parts(n).map_or("build", |p| p.1) == g) {
            let Some(base) = baseline.ratios.get(n).copied().filter(|b| *b > 0.0) else { continue };
            let (name, look) = match speedup_parts(n) {
                Some((backend, _, dtype, _)) => (
                    format!("{backend} {dtype}"),
                    Look::measured(Hue::of_backend(backend, dtype), Marker::of_backend(backend), Dash::of_precision(dtype)),
                ),
                None => ("Yun et al. build time / one-layer build time".to_string(), Look::measured(Hue::Yun, Marker::Circle, Dash::Solid)),
            };
            let points: Vec<(f64, f64)> =
                runs.iter().enumerate().filter_map(|(i, r)| Some(((i + 1) as f64, r.ratios.get(n)? / base))).collect();
            series.push(Series::measured(name, look, points));
        }
        let k = runs.len() as f64;
        series.push(Series {
            name: "committed baseline (1)".into(),
            look: Look::formula(Hue::Reference),
            points: vec![(0.5, 1.0), (k + 0.5, 1.0)],
            ..Default::default()
        });
        series.push(Series {
            name: format!("check fails below {} × baseline", baseline.lower),
            look: Look::bound(Hue::Reference),
            points: vec![(0.5, baseline.lower), (k + 0.5, baseline.lower)],
            ..Default::default()
        });
        panels.push(Panel {
            title: if g == "build" { "build: Yun et al. / one layer".into() } else { format!("{g}: speedup over the reference path") },
            x: Axis::linear("recorded run (commit, date; + = uncommitted changes)"),
            y: Axis::log("speedup ÷ committed baseline (higher is better)"),
            series,
            x_categories: labels.clone(),
            dodge: true,
            y_marks: Vec::new(),
        });
    }
    Ok(crate::explained(Chart {
        name: "bench_history".into(),
        title: "Wall-clock ratios over recorded runs, relative to the committed baseline".into(),
        subtitle: vec![
            "results/bench-history.jsonl (scripts/bench-track.sh --record), 2 threads; ratios survive noisy machines better than times"
                .into(),
            format!(
                "above 1: faster than when the baseline was committed; {dirty} of {} runs from trees with uncommitted changes (+ after the commit)",
                runs.len()
            ),
        ],
        panels,
        ..Default::default()
    }))
}

/// Throughput of every backend, workload and type at 2 threads in the latest recorded run, against the
/// machine's own ceiling (`results/backends/gemm-ceiling.json`, written by the `gemm_ceiling` example of
/// `boltz-blas`): each point is its GFLOP/s as a percentage of the measured FMA peak of its element type
/// (issue #30), and OpenBLAS's sgemm and dgemm at n = 1024 are drawn as lines at their own percentage.
/// A ceiling file without the peak (older files) gives the GFLOP/s chart against OpenBLAS alone.
pub fn throughput_chart(jsonl: &str, ceiling: &str) -> Result<Chart> {
    let runs = parse_history(jsonl)?;
    let last = runs.last().ok_or_else(|| anyhow!("the history has no runs"))?;
    let c: Value = serde_json::from_str(ceiling)?;
    let row = c
        .get("rows")
        .and_then(Value::as_array)
        .and_then(|rows| rows.iter().find(|r| r.get("threads").and_then(Value::as_u64) == Some(2)))
        .ok_or_else(|| anyhow!("the GEMM ceiling has no row for 2 threads"))?;
    let num = |key: &str| row.get(key).and_then(Value::as_f64);
    let (sgemm, dgemm) =
        (num("sgemm_gflops").ok_or_else(|| anyhow!("no sgemm_gflops"))?, num("dgemm_gflops").ok_or_else(|| anyhow!("no dgemm_gflops"))?);
    let peak = match (num("fma_peak_gflops_f32"), num("fma_peak_gflops_f64")) {
        (Some(f32_peak), Some(f64_peak)) if f32_peak > 0.0 && f64_peak > 0.0 => Some((f32_peak, f64_peak)),
        (None, None) => None,
        _ => anyhow::bail!("the ceiling's 2-thread row has an incomplete or non-positive FMA peak"),
    };
    let isa = row.get("isa").and_then(Value::as_str).unwrap_or("?");
    // The value drawn for `gflops` of `dtype`: % of that type's peak, or GFLOP/s without a peak.
    let scale = |dtype: &str, g: f64| match peak {
        Some((p32, p64)) => 100.0 * g / if dtype == "f32" { p32 } else { p64 },
        None => g,
    };
    // forward/<backend>/<workload>/<dtype>,batch=<b>,threads=2
    let mut entries: Vec<(String, String, String, f64)> = Vec::new();
    for (k, g) in &last.gflops {
        let Some(rest) = k.strip_prefix("forward/") else { continue };
        let parts: Vec<&str> = rest.splitn(3, '/').collect();
        let [backend, workload, tail] = parts[..] else { continue };
        let Some((dtype, _)) = tail.split_once(",batch=") else { continue };
        if tail.ends_with("threads=2") && backend != "reference" {
            entries.push((backend.into(), workload.into(), dtype.into(), scale(dtype, *g)));
        }
    }
    let mut workloads: Vec<String> = entries.iter().map(|e| e.1.clone()).collect();
    workloads.sort();
    workloads.dedup();
    let mut keys: Vec<(String, String)> = entries.iter().map(|e| (e.0.clone(), e.2.clone())).collect();
    keys.sort();
    keys.dedup();
    let mut series = Vec::new();
    for (slot, (backend, dtype)) in keys.iter().enumerate() {
        let offset = 0.08 * (slot as f64 - (keys.len() as f64 - 1.0) / 2.0);
        let points = entries
            .iter()
            .filter(|e| e.0 == *backend && e.2 == *dtype)
            .filter_map(|e| Some(((workloads.iter().position(|w| *w == e.1)? + 1) as f64 + offset, e.3)))
            .collect();
        // Points only: the line pattern is invisible, so colour (backend and type) and marker (backend) tell
        // the series apart.
        let hue = Hue::of_backend(backend, dtype);
        series.push(Series {
            scatter: true,
            ..Series::measured(
                format!("{backend} {dtype}"),
                Look::measured(hue, Marker::of_backend(backend), Dash::of_precision(dtype)),
                points,
            )
        });
    }
    let k = workloads.len() as f64;
    let level = |y: f64| vec![(0.5, y), (k + 0.5, y)];
    if let Some((p32, p64)) = peak {
        series.push(Series {
            name: format!("FMA peak ({isa}): f32 {p32:.0}, f64 {p64:.0} GFLOP/s"),
            look: Look::bound(Hue::Reference),
            points: level(100.0),
            ..Default::default()
        });
    }
    let (s_name, d_name) = match peak {
        Some(_) => (
            format!("OpenBLAS sgemm n = 1024: {sgemm:.0} GFLOP/s ({:.0} %)", scale("f32", sgemm)),
            format!("OpenBLAS dgemm n = 1024: {dgemm:.0} GFLOP/s ({:.0} %)", scale("f64", dgemm)),
        ),
        None => (format!("OpenBLAS sgemm ceiling, {sgemm:.0} GFLOP/s"), format!("OpenBLAS dgemm ceiling, {dgemm:.0} GFLOP/s")),
    };
    series.push(Series {
        name: s_name,
        look: Look { hue: Hue::Reference, marker: Marker::None, dash: Dash::Short },
        points: level(scale("f32", sgemm)),
        ..Default::default()
    });
    series.push(Series {
        name: d_name,
        look: Look { hue: Hue::Reference, marker: Marker::None, dash: Dash::Dashed },
        points: level(scale("f64", dgemm)),
        ..Default::default()
    });
    let cpu = c.get("cpu").and_then(Value::as_str).map_or(String::new(), |cpu| format!(" ({cpu})"));
    let (title, y, ceiling_line) = match peak {
        Some(_) => (
            "Forward throughput per backend as % of the machine's FMA peak (2 threads)",
            Axis::log("% of the FMA peak of its type"),
            format!("peak: register-only FMA kernel ({isa}), and OpenBLAS GEMM at n = 1024, on the same machine{cpu} (results/backends/gemm-ceiling.json)"),
        ),
        None => (
            "Forward throughput per backend vs the GEMM ceiling (2 threads)",
            Axis::log("GFLOP/s"),
            "ceiling: OpenBLAS GEMM at n = 1024 on the same machine (results/backends/gemm-ceiling.json)".into(),
        ),
    };
    Ok(crate::explained(Chart {
        name: "throughput".into(),
        title: title.into(),
        subtitle: vec![
            format!(
                "criterion medians of run {} (results/bench-history.jsonl); the workload table of `boltz workloads`",
                last.label.replace('\n', " ")
            ),
            ceiling_line,
        ],
        panels: vec![Panel { x: Axis::linear("workload"), y, series, x_categories: workloads, ..Default::default() }],
        ..Default::default()
    }))
}
