//! Every chart rendered from a fixture (the committed results, plus a run that failed), checked from the
//! chart's data model: no two series of a chart look alike, measured series have markers and formulas do
//! not, a construction has its colour in every chart, and no measured series carries a placeholder where
//! a run failed.

use std::path::Path;

use super::*;
use crate::common::{constructions, policy_hue};
use crate::style::Dash;
use boltz_lab::suite::load_results;
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The committed results, with one capacity row's f64 run turned into a failure (as a weight overflow
/// records it): the accuracy chart must mark it ✕, never draw a value.
fn fixture() -> (BTreeMap<String, ResultFile>, f64) {
    let mut results = load_results(&repo().join("results/reproduce")).expect("committed results");
    let cap = results.get_mut("capacity").expect("capacity.json");
    let row = cap
        .rows
        .iter_mut()
        .find(|r| r["policy"] == "fewest-bits" && r["runs"].as_array().is_some_and(|runs| !runs.is_empty()))
        .expect("a fewest-bits row with runs");
    let n = row["N"].as_f64().expect("N");
    for run in row["runs"].as_array_mut().expect("runs") {
        if run["precision"] == "f64" {
            run["accuracy"] = Value::Null;
            run["latency_ms"] = Value::Null;
            run["error"] = Value::String("non-finite value (NaN or inf) at blocks.0.ffn.w2[3]".into());
        }
    }
    (results, n)
}

fn check_chart(chart: &Chart) {
    let mut looks = std::collections::BTreeMap::new();
    let mut scatter_looks = std::collections::BTreeMap::new();
    for (p, panel) in chart.panels.iter().enumerate() {
        for s in &panel.series {
            // Within a chart, one look is one series (a series may recur by name across panels).
            if let Some(other) = looks.insert(s.look, s.name.clone()) {
                assert_eq!(other, s.name, "{}: two series share colour, marker and line: {:?}", chart.name, s.look);
            }
            // Points without lines: the line pattern is invisible, so colour and marker must differ.
            if s.scatter {
                if let Some(other) = scatter_looks.insert((s.look.hue, s.look.marker), s.name.clone()) {
                    assert_eq!(other, s.name, "{}: two point series share colour and marker: {:?}", chart.name, s.look);
                }
            }
            if s.is_measured() {
                assert!(s.points.iter().all(|p| p.0.is_finite() && p.1.is_finite()), "{}: {} has a non-finite point", chart.name, s.name);
                for x in &s.failed {
                    assert!(!s.points.iter().any(|p| p.0 == *x), "{}: {} has a value where its run failed (N = {x})", chart.name, s.name);
                }
            } else {
                assert_ne!(s.look.dash, Dash::Solid, "{}: formula or bound {} must not look measured", chart.name, s.name);
                assert!(s.failed.is_empty() && s.spread.is_empty(), "{}: {}", chart.name, s.name);
            }
            // A construction has its own colour wherever it appears.
            for (policy, label) in constructions() {
                if s.name.contains(label) && s.is_measured() {
                    assert_eq!(s.look.hue, policy_hue(policy), "{}: {} in the wrong colour", chart.name, s.name);
                }
            }
            assert!(!s.name.contains("fewest bits, tuned") && !s.name.contains("fewest-bits"), "{}: internal name {}", chart.name, s.name);
            let _ = p;
        }
    }
    assert!(!chart.subtitle.is_empty(), "{}: no subtitle with the fixed parameters", chart.name);
    assert!(!chart.legend_entries().is_empty(), "{}: nothing drawn", chart.name);
}

#[test]
fn every_chart_renders_and_no_two_series_look_alike() {
    let (results, failed_n) = fixture();
    let charts = charts(&results).expect("charts");
    let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
    for expected in [
        "depth_vs_n",
        "params_vs_n",
        "precision_vs_n",
        "accuracy_vs_n",
        "latency_vs_n",
        "adversarial_bits",
        "separation",
        "approximation_vs_delta",
        "trained_capacity",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for c in &charts {
        check_chart(c);
    }
    // The failed f64 run is a ✕ in the f64 panel, not a zero.
    let acc = charts.iter().find(|c| c.name == "accuracy_vs_n").expect("accuracy chart");
    assert_eq!(acc.panels.len(), 2, "f64 and f32 panels");
    let fb = acc.panels[0].series.iter().find(|s| s.look.hue == Hue::FewestBits).expect("fewest-bits in f64");
    assert!(fb.failed.contains(&failed_n) && !fb.points.iter().any(|p| p.0 == failed_n), "{fb:?}");
    // Latencies carry their spread (min–max of the repeats).
    let lat = charts.iter().find(|c| c.name == "latency_vs_n").expect("latency chart");
    assert!(lat.panels[0].series.iter().any(|s| !s.spread.is_empty() && s.spread.iter().all(|&(_, lo, hi)| lo <= hi)));
    // Trained capacity: four panels; the constructions share the axes (same n, d, |V|); bits per parameter
    // against the 2 and 3.6 lines; the trained points are not joined.
    let tr = charts.iter().find(|c| c.name == "trained_capacity").expect("trained chart");
    assert_eq!(tr.panels.len(), 4);
    // The constructions run to 10× the largest N trained (the trained points do not crowd one corner).
    assert!(tr.panels[0].series.iter().any(|s| s.name.starts_with("one-layer memorizer") && s.points.len() >= 3));
    let reach =
        tr.panels[0].series.iter().filter(|s| s.name.starts_with("trained")).flat_map(|s| &s.points).map(|p| p.0).fold(0.0, f64::max);
    let built_n = tr.panels[0].series.iter().filter(|s| s.name.ends_with("(built)")).flat_map(|s| &s.points).map(|p| p.0);
    assert!(built_n.fold(0.0, f64::max) <= 10.0 * reach, "constructions drawn far beyond the trained points");
    assert!(tr.subtitle.iter().any(|l| l.contains("10× the largest N trained")), "{:?}", tr.subtitle);
    for level in [2.0, 3.6] {
        assert!(tr.panels[1].series.iter().any(|s| !s.is_measured() && s.points.iter().all(|p| p.1 == level)), "{level}");
    }
    assert!(tr.panels.iter().flat_map(|p| &p.series).filter(|s| s.name.starts_with("trained")).all(|s| s.scatter));
    // The separation points are not joined across configurations.
    let sep = charts.iter().find(|c| c.name == "separation").expect("separation");
    assert!(sep.panels.iter().flat_map(|p| &p.series).all(|s| s.scatter));

    let history = std::fs::read_to_string(repo().join("results/bench-history.jsonl")).expect("history");
    let baseline = Baseline::parse(&std::fs::read_to_string(repo().join("results/bench-baselines/ratios.json")).expect("baseline"))
        .expect("baseline parses");
    let ceiling = std::fs::read_to_string(repo().join("results/backends/gemm-ceiling.json")).expect("ceiling");
    let h = history_chart(&history, &baseline).expect("history chart");
    let t = throughput_chart(&history, &ceiling).expect("throughput chart");
    check_chart(&h);
    check_chart(&t);
    assert!(h.panels.iter().all(|p| p.x_categories.iter().all(|l| l.len() >= 7)), "commit labels");

    let dir = std::env::temp_dir().join(format!("boltz-charts-{}", std::process::id()));
    for c in charts.iter().chain([&h, &t]) {
        for f in draw(c, &dir).expect("draw") {
            let bytes = std::fs::read(&f).expect("chart file");
            let magic: &[u8] = match f.extension().and_then(|e| e.to_str()) {
                Some("png") => b"\x89PNG",
                Some("pdf") => b"%PDF",
                _ => b"<svg",
            };
            assert!(bytes.starts_with(magic), "{}", f.display());
        }
    }
    // PNG at 2×.
    let png = std::fs::read(dir.join("precision_vs_n.png")).expect("png");
    let (w, h) = (u32::from_be_bytes([png[16], png[17], png[18], png[19]]), u32::from_be_bytes([png[20], png[21], png[22], png[23]]));
    let precision = charts.iter().find(|c| c.name == "precision_vs_n").expect("precision chart");
    let size = render::canvas_size(precision);
    assert_eq!((w, h), (2 * size.0, 2 * size.1));
    assert!(std::fs::read_dir(&dir).expect("dir").all(|e| !e
        .expect("entry")
        .file_name()
        .to_string_lossy()
        .contains(boltz_core::format::TEMP_MARKER)));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn extreme_values_are_dropped_not_drawn_forever() {
    let pts = [(1.0, 1.7e308), (2.0, 5e-324), (3.0, 10.0), (f64::NAN, 1.0), (4.0, -1.0)];
    assert_eq!(render::clean(&pts, false, true), vec![(3.0, 10.0)]);
    assert_eq!(render::clean(&pts, false, false), vec![(2.0, 5e-324), (3.0, 10.0), (4.0, -1.0)]);
    let chart = Chart {
        name: "extreme".into(),
        title: "extreme".into(),
        subtitle: vec!["values beyond the drawable range".into()],
        panels: vec![Panel {
            x: Axis::log("x"),
            y: Axis::log("y"),
            series: vec![Series::measured("s", Look::measured(Hue::Slot(0), Marker::Circle, Dash::Solid), pts.to_vec())],
            ..Default::default()
        }],
        ..Default::default()
    };
    let dir = std::env::temp_dir().join(format!("boltz-chart-extreme-{}", std::process::id()));
    let files = draw(&chart, &dir).expect("draw");
    assert!(files.iter().all(|f| f.exists()));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn history_lines_become_series_relative_to_the_baseline() {
    let text = "{\"git_rev\": \"abc1234\", \"time\": \"2026-11-29T06:41:28Z\", \"ratios\": {\"speedup/cpu/practical/f32,threads=2\": 40.0, \"speedup/cpu/practical/f32,threads=1\": 20.0}}\n\
                {\"git_rev\": \"def5678\", \"dirty\": true, \"ratios\": {\"speedup/cpu/practical/f32,threads=2\": 42.0}}\n";
    let baseline = Baseline::parse("{\"lower\": 0.33, \"ratios\": {\"speedup/cpu/practical/f32,threads=2\": 20.0}}").expect("baseline");
    let chart = history_chart(text, &baseline).expect("chart");
    assert_eq!(chart.panels.len(), 1);
    let p = &chart.panels[0];
    assert_eq!(p.x_categories, ["abc1234\n11-29", "def5678+\n"]);
    assert_eq!(p.series[0].points, vec![(1.0, 2.0), (2.0, 2.1)]);
    assert!(p.series.iter().any(|s| s.points.first() == Some(&(0.5, 0.33))), "the threshold line");
    assert!(history_chart("{\"x\": 1}", &baseline).unwrap_err().to_string().contains("line 1"));
    assert!(history_chart("", &baseline).is_err());
    assert!(Baseline::parse("{\"ratios\": {}}").is_err(), "a baseline without its factor");
}

/// The throughput chart reads each bench as a percentage of its type's measured FMA peak (issue #30), with
/// OpenBLAS's GEMM as lines at its own percentage; an older ceiling file without the peak still draws
/// GFLOP/s against OpenBLAS, and a half-written peak is refused.
#[test]
fn throughput_is_drawn_against_the_measured_peak() {
    let history = r#"{"git_rev": "abc1234", "ratios": {"x": 1.0}, "benches": {
        "forward/cpu/practical/f32,batch=32,threads=2": {"gflops": 150.0},
        "forward/blas/practical/f64,batch=32,threads=2": {"gflops": 40.0},
        "forward/cpu/practical/f32,batch=32,threads=1": {"gflops": 80.0}}}"#
        .replace('\n', " ");
    let peak = r#"{"cpu": "Test CPU", "rows": [{"threads": 2, "sgemm_gflops": 100.0, "dgemm_gflops": 50.0, "isa": "avx2+fma",
        "fma_peak_gflops_f32": 200.0, "fma_peak_gflops_f64": 80.0, "triad_gb_per_s": 30.0}]}"#;
    let t = throughput_chart(&history, peak).expect("chart");
    check_chart(&t);
    let series = &t.panels[0].series;
    let find = |prefix: &str| series.iter().find(|s| s.name.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}: {series:?}"));
    assert_eq!(find("cpu f32").points.iter().map(|p| p.1).collect::<Vec<_>>(), vec![75.0], "150 of 200 GFLOP/s");
    assert_eq!(find("blas f64").points.iter().map(|p| p.1).collect::<Vec<_>>(), vec![50.0], "40 of 80 GFLOP/s");
    assert!(find("FMA peak (avx2+fma)").points.iter().all(|p| p.1 == 100.0));
    assert!(find("OpenBLAS sgemm").points.iter().all(|p| p.1 == 50.0));
    assert!(find("OpenBLAS dgemm").points.iter().all(|p| (p.1 - 62.5).abs() < 1e-12));
    assert!(t.subtitle.iter().any(|l| l.contains("Test CPU")), "{:?}", t.subtitle);
    // Without the peak: GFLOP/s, OpenBLAS as the ceiling.
    let old = r#"{"rows": [{"threads": 2, "sgemm_gflops": 100.0, "dgemm_gflops": 50.0}]}"#;
    let t = throughput_chart(&history, old).expect("chart");
    assert_eq!(t.panels[0].series.iter().find(|s| s.name == "cpu f32").expect("cpu f32").points[0].1, 150.0);
    assert!(!t.panels[0].series.iter().any(|s| s.name.starts_with("FMA peak")));
    let half = r#"{"rows": [{"threads": 2, "sgemm_gflops": 100.0, "dgemm_gflops": 50.0, "fma_peak_gflops_f32": 200.0}]}"#;
    assert!(throughput_chart(&history, half).is_err());
}

/// A text the SVG draws, as a box: `(left, top, width, height, size, text)` in canvas units, from the
/// `<text>` element's anchor point, `text-anchor`, `dy` and `font-size` as plotters writes them (it writes
/// the font size divided by 1.24; `dy` 0.76em anchors the top, 0.5ex the middle, −0.5ex the bottom), the
/// width measured in the embedded font. Rotated texts (the y axes' descriptions) are left out.
fn svg_texts(svg: &str) -> Vec<(f64, f64, f64, f64, f64, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        tag[start..].split('"').next().map(str::to_string)
    };
    let num = |tag: &str, name: &str| attr(tag, name)?.trim_end_matches("px").parse::<f64>().ok();
    svg.split("<text")
        .skip(1)
        .filter_map(|rest| {
            let (tag, body) = rest.split_once('>')?;
            if tag.contains("transform") {
                return None;
            }
            let text = body.split("</text>").next()?.trim();
            let text = text.replace("&apos;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
            let (x, y, size) = (num(tag, "x")?, num(tag, "y")?, num(tag, "font-size")? * 1.24);
            let width = render::text_width(&text, size);
            let left = match attr(tag, "text-anchor").as_deref() {
                Some("middle") => x - width / 2.0,
                Some("end") => x - width,
                _ => x,
            };
            let top = match attr(tag, "dy").as_deref() {
                Some("0.76em") => y,
                Some("0.5ex") => y - size / 2.0,
                _ => y - size,
            };
            Some((left, top, width, size, size, text))
        })
        .collect()
}

/// A chart with every legend extreme: 20 series with long names, one with a single point, one whose runs
/// all failed, a long ✕ note and two subtitle lines.
fn crowded_chart() -> Chart {
    use crate::style::{Hue, Look};
    let hues = [Hue::Measured, Hue::FewestBits, Hue::MeanPool, Hue::Yun, Hue::Reference];
    let markers = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond];
    let mut series: Vec<Series> = (0..20)
        .map(|i| {
            let look = Look { marker: markers[i % 4], ..Look::formula(hues[i / 4]) };
            let name = format!("series {i}: a construction with a long description that wraps over several legend lines (built, factored)");
            Series::measured(name, look, vec![(10.0, 1.0 + i as f64), (100.0, 2.0 + i as f64)])
        })
        .collect();
    series[3].points.truncate(1);
    series[5].points.clear();
    series[5].failed = vec![10.0, 100.0];
    Chart {
        name: "crowded".into(),
        title: "twenty series".into(),
        subtitle: vec!["first line".into(), "second line".into()],
        panels: vec![Panel { x: Axis::log("N"), y: Axis::linear("value"), series, ..Default::default() }],
        failed_note: Some("no run: the construction was refused on this data (a long note that must wrap as well)".into()),
    }
}

/// Layout checked, not hoped for: in every committed chart and a crowded one, every text the SVG draws
/// lies inside the canvas (measured in the embedded font), the legend's last line ends above the bottom
/// margin, and the canvas grows only where a legend needs it. Before legends were laid out, the committed
/// latency chart's 15 entries ran off its 720-unit canvas.
#[test]
fn every_label_and_legend_entry_lies_inside_the_canvas() {
    let mut all: Vec<Chart> = vec![crowded_chart()];
    for dir in
        ["reproduce", "optimal-n10000", "precision-n1000", "precision-n1000-deep", "precision-n10000", "trained-widths", "trained-capacity"]
    {
        let results = load_results(&repo().join("results").join(dir)).expect("result files");
        if !results.is_empty() {
            all.extend(charts(&results).expect("charts"));
        }
    }
    assert!(all.len() > 20, "{} charts", all.len());
    let mut grown = Vec::new();
    for chart in &all {
        let (w, h) = render::canvas_size(chart);
        let svg = render::svg(chart).expect("svg");
        let texts = svg_texts(&svg);
        assert!(!texts.is_empty(), "{}: no text parsed from the SVG", chart.name);
        for (left, top, width, height, _, text) in &texts {
            assert!(
                *left >= -0.5 && left + width <= f64::from(w) + 0.5,
                "{}: {text:?} from x = {left:.0} (width {width:.0}) leaves the {w}-wide canvas",
                chart.name
            );
            assert!(
                *top >= -0.5 && top + height <= f64::from(h) + 0.5,
                "{}: {text:?} from y = {top:.0} leaves the {h}-high canvas",
                chart.name
            );
        }
        // The legend's lines: every entry's text is drawn, and the last ends above the bottom margin.
        let (entries, needed) = render::legend_layout(chart);
        let legend: Vec<_> = texts.iter().filter(|t| (t.4 - render::LEGEND_TEXT).abs() < 0.01).collect();
        let legend_lines: usize = entries.iter().map(|e| e.lines.len()).sum();
        assert!(legend.len() >= legend_lines, "{}: {} legend lines drawn of {legend_lines}", chart.name, legend.len());
        let last = legend.iter().map(|t| t.1 + t.3).fold(0.0, f64::max);
        assert!(last <= f64::from(h) - 8.0, "{}: the legend ends at {last:.0}, past the {h}-high canvas", chart.name);
        for e in &entries {
            assert!(
                e.lines.iter().all(|l| render::text_width(l, render::LEGEND_TEXT) <= render::LEGEND_TEXT_WIDTH),
                "{}: {:?}",
                chart.name,
                e.lines
            );
        }
        // Ticks where the message is: every precision chart that draws the formats labels f32's 24 and
        // f64's 53 bits on its axis; one whose values all lie far above them says why it does not.
        let formats = chart.panels.iter().flat_map(|p| &p.series).any(|s| s.name.starts_with("f32: 24"));
        if chart.name == "precision_vs_n" && !formats {
            assert!(chart.subtitle.iter().any(|l| l.contains("which are not drawn")), "{}: {:?}", chart.name, chart.subtitle);
        }
        if chart.name == "precision_vs_n" && formats {
            for bits in ["24", "53"] {
                assert!(texts.iter().any(|t| t.5 == bits), "{}: no {bits} label on the bits axis", chart.name);
            }
        }
        if h > render::SIZE.1 {
            grown.push(format!("{} ({needed:.0} for the legend)", chart.name));
        }
    }
    assert!(grown.iter().any(|g| g.starts_with("crowded ")), "the crowded chart needs a taller canvas: {grown:?}");
    eprintln!("charts on a taller canvas: {grown:?}");
}

/// Charts that earn their place (issue #34, item 6): constant attention ranks and a one-N sweep are tables,
/// not charts; a rank that varies over N keeps its chart (whiskers show the range).
#[test]
fn constant_and_one_point_charts_become_tables() {
    let results = load_results(&repo().join("results/reproduce")).expect("committed results");
    let tables = crate::tables(&results).expect("tables");
    let rank = tables.iter().find(|t| t.name == "attention_rank").expect("a rank table");
    assert!(!charts(&results).expect("charts").iter().any(|c| c.name == "attention_rank"), "constant ranks drawn as a chart");
    // Rank 1 for both products of every softmax construction, 0 for W_Kᵀ W_Q where attention averages
    // (mean pooling, λ = 0, and the bit-extraction construction's averaging layer).
    for row in &rank.rows {
        let expected_kq = if row[0].contains("mean pooling") || row[0].contains("averaging") { "0" } else { "1" };
        assert_eq!((row[1].as_str(), row[2].as_str()), (expected_kq, "1"), "{row:?}");
    }
    assert!(rank.markdown().contains("| construction | rank W_Kᵀ W_Q |"), "{}", rank.markdown());
    // A rank that differs at one N: the chart comes back, the table goes.
    let mut varied = results.clone();
    let cap = varied.get_mut("capacity").expect("capacity.json");
    let row = cap.rows.iter_mut().find(|r| r["rank_key_query_max"].as_u64() == Some(1)).expect("a ranked row");
    row["rank_key_query_max"] = Value::from(2);
    assert!(charts(&varied).expect("charts").iter().any(|c| c.name == "attention_rank"));
    assert!(!crate::tables(&varied).expect("tables").iter().any(|t| t.name == "attention_rank"));
    // One N (precision-n1000-deep: N = 1 000 only): one table, no "against N" chart.
    let deep = load_results(&repo().join("results/precision-n1000-deep")).expect("result files");
    let names: Vec<String> = charts(&deep).expect("charts").into_iter().map(|c| c.name).collect();
    assert!(names.iter().all(|n| !n.ends_with("_vs_n")), "{names:?}");
    let tables = crate::tables(&deep).expect("tables");
    let at_n = tables.iter().find(|t| t.name == "capacity_at_one_n").expect("the one-N table");
    assert_eq!(at_n.title, "The constructions at N = 1000");
    let yun = at_n.rows.iter().find(|r| r[0].starts_with("Yun")).expect("Yun's row");
    assert_eq!(yun[4], "441", "Yun's fewest bits at N = 1 000: {yun:?}");
}

/// Every chart of the committed results directories, the bench history and the throughput chart, each
/// with its directory.
fn committed_charts() -> Vec<(String, Chart)> {
    let mut all: Vec<(String, Chart)> = Vec::new();
    for dir in ["reproduce", "optimal-n10000", "precision-n1000", "precision-n1000-deep", "precision-n10000", "trained-widths"] {
        let results = load_results(&repo().join("results").join(dir)).expect("result files");
        all.extend(charts(&results).expect("charts").into_iter().map(|c| (dir.to_string(), c)));
    }
    let history = std::fs::read_to_string(repo().join("results/bench-history.jsonl")).expect("history");
    let baseline = Baseline::parse(&std::fs::read_to_string(repo().join("results/bench-baselines/ratios.json")).expect("baseline"))
        .expect("baseline parses");
    let ceiling = std::fs::read_to_string(repo().join("results/backends/gemm-ceiling.json")).expect("ceiling");
    all.push(("results".into(), history_chart(&history, &baseline).expect("history chart")));
    all.push(("results".into(), throughput_chart(&history, &ceiling).expect("throughput chart")));
    all
}

/// Every series visible or explained (issue #34, item 2): in no panel of any committed chart is a series
/// drawn entirely under another without its legend entry saying so. Before the check, the f64 panel of
/// `reproduce/accuracy_vs_n` hid one construction's line under another's at 1.0, the approximation charts
/// hid the piecewise-constant floor under the error, and the depth and parameter charts hid Yun's formula
/// under the built count. The crowded chart checks the rule itself: one hidden series, named once.
#[test]
fn every_series_is_visible_or_explained() {
    let mut explained = 0;
    for (dir, chart) in committed_charts() {
        for panel in &chart.panels {
            for (i, under) in panel.series.iter().enumerate() {
                for over in &panel.series[i + 1..] {
                    if over.name != under.name && crate::hidden_under(under, over) {
                        assert!(
                            under.note.contains(crate::DRAWN_UNDER),
                            "{dir}/{} ({}): {:?} lies under {:?} and its legend entry does not say so",
                            chart.name,
                            panel.title,
                            under.name,
                            over.name
                        );
                        explained += 1;
                    }
                }
            }
        }
    }
    assert!(explained > 0, "the committed charts have coinciding series; none was found");
    let mut chart = crowded_chart();
    let copy = Series { name: "copy".into(), ..chart.panels[0].series[0].clone() };
    chart.panels[0].series.insert(0, copy);
    crate::explain_coinciding(&mut chart);
    let notes: Vec<&str> = chart.panels[0].series.iter().map(|s| s.note.as_str()).collect();
    assert!(notes[0].starts_with("equal to “series 0") && notes[0].contains(crate::DRAWN_UNDER), "{notes:?}");
    assert!(notes[1..].iter().all(|n| n.is_empty()), "{notes:?}");
    assert!(chart.legend_entries()[0].0.starts_with("copy (equal to"), "{:?}", chart.legend_entries()[0]);
}

/// One colour per identity in every directory: across every chart of the committed results directories,
/// the bench history and the throughput chart, a legend name (a construction, a trained recipe, a backend
/// and type) has one colour. Before the palette was keyed by identity, the curriculum recipe was dark
/// green in `reproduce/` and light blue in `trained-widths/`, and light blue was cpu in one bench chart and
/// blas f64 in the other.
#[test]
fn one_colour_per_identity_in_every_directory() {
    let all = committed_charts();
    // Every chart of every directory keeps its series apart (the committed trained-widths run has five recipes).
    for (_, chart) in &all {
        check_chart(chart);
    }
    let mut colour: BTreeMap<String, (crate::style::Hue, String)> = BTreeMap::new();
    let mut shared = 0;
    for (dir, chart) in &all {
        for s in chart.panels.iter().flat_map(|p| &p.series).filter(|s| s.is_measured()) {
            let here = format!("{dir}/{}", chart.name);
            match colour.get(&s.name) {
                Some((hue, there)) => {
                    assert_eq!(*hue, s.look.hue, "{:?} is {hue:?} in {there} and {:?} in {here}", s.name, s.look.hue);
                    shared += 1;
                }
                None => {
                    colour.insert(s.name.clone(), (s.look.hue, here));
                }
            }
        }
    }
    assert!(shared > 50, "identities seen in more than one chart: {shared}");
    // The two bench charts name backends alike and agree on their colours.
    assert!(colour.keys().any(|n| n == "cpu f64"), "{:?}", colour.keys().collect::<Vec<_>>());
}
