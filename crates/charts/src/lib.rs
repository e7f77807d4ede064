//! # boltz-charts
//!
//! Paper-style charts drawn from result files, only ever from the JSON (so `boltz plot` can redraw them).
//!
//! A [`Chart`] is data: panels of [`Series`], each with a [`style::Look`] chosen by what the series *is*
//! (construction → colour, backend → marker, precision or formula → line; see [`style`]). Measured values
//! that are absent because a run failed are never drawn as a number: they are listed in
//! [`Series::failed`] and marked ✕. [`render::draw`] writes PNG (2×), SVG and PDF.

mod adversarial;
mod approximation;
mod capacity;
mod common;
mod history;
pub mod render;
mod separation;
pub mod style;
mod trained;

use std::collections::BTreeMap;

use anyhow::Result;

use boltz_lab::rows::{self, ApproximationRow, ConstructionRow, SeparationRow, TrainedRow};
use boltz_lab::suite::ResultFile;

use crate::style::{Hue, Look, Marker};

use adversarial::adversarial_chart;
use approximation::approximation_charts;
use capacity::capacity_charts;
pub use history::{history_chart, throughput_chart, Baseline};
pub use render::draw;
use separation::separation_chart;
use trained::trained_chart;

/// One named series of a panel.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend entry (what a reader should see, never an internal name).
    pub name: String,
    /// Colour, marker and line.
    pub look: Look,
    /// `(x, y)` points (non-finite and, on log axes, non-positive values are not drawn).
    pub points: Vec<(f64, f64)>,
    /// `(x, min, max)` whiskers (the spread of repeated measurements).
    pub spread: Vec<(f64, f64, f64)>,
    /// x positions where the measured value is absent because the run failed (drawn ✕ on the floor).
    pub failed: Vec<f64>,
    /// Points only, no joining line (values that depend on more than the x variable).
    pub scatter: bool,
    /// Words the legend adds after the name (empty: none), e.g. that the series is drawn under another
    /// ([`explain_coinciding`]); the name stays the series' identity (its colour across charts).
    pub note: String,
}

impl Series {
    /// A measured series.
    pub fn measured(name: impl Into<String>, look: Look, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), look, points, ..Default::default() }
    }

    /// Whether this series shows measurements (it has markers) rather than a formula or bound.
    pub fn is_measured(&self) -> bool {
        self.look.marker != Marker::None
    }
}

impl Default for Look {
    fn default() -> Self {
        Look::formula(Hue::Reference)
    }
}

/// One axis.
#[derive(Clone, Debug, Default)]
pub struct Axis {
    /// Description, with the unit.
    pub label: String,
    /// Logarithmic.
    pub log: bool,
    /// A fixed range (else the data's, padded).
    pub range: Option<(f64, f64)>,
    /// Labelled ticks at exactly these values (empty: ticks chosen from the range), for axes whose values
    /// are a known grid (δ = 1/2, 1/4, …).
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis.
    pub fn linear(label: impl Into<String>) -> Self {
        Self { label: label.into(), log: false, range: None, ticks: Vec::new() }
    }
    /// A logarithmic axis.
    pub fn log(label: impl Into<String>) -> Self {
        Self { label: label.into(), log: true, range: None, ticks: Vec::new() }
    }
}

/// One plot area.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// Heading (empty for a one-panel chart).
    pub title: String,
    /// X axis.
    pub x: Axis,
    /// Y axis.
    pub y: Axis,
    /// The series.
    pub series: Vec<Series>,
    /// Names of categorical x positions `1, 2, …` (empty: a numeric x axis).
    pub x_categories: Vec<String>,
    /// Spread the measured series a little sideways, so that series with equal values stay visible (the
    /// chart's subtitle says so).
    pub dodge: bool,
    /// Values the chart is about, always labelled on the y axis wherever the axis spans them (24 and 53
    /// bits on precision charts), whatever the ticks' step; a tick label too close to one gives way.
    pub y_marks: Vec<f64>,
}

/// A chart: a title, the fixed parameters, one to four panels and one legend.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// File stem (`depth_vs_n` → `depth_vs_n.png`, `.svg`, `.pdf`).
    pub name: String,
    /// Title.
    pub title: String,
    /// Lines under the title: the fixed parameters, the seed, what one point is.
    pub subtitle: Vec<String>,
    /// The panels, side by side (four: 2 × 2).
    pub panels: Vec<Panel>,
    /// The legend text of the ✕ marks (what a failed run means here).
    pub failed_note: Option<String>,
}

impl Chart {
    /// The legend: every distinct (name, look) in panel order, labelled with its name and note, with
    /// whether it is drawn without lines.
    pub fn legend_entries(&self) -> Vec<(String, Look, bool)> {
        let mut seen: Vec<(&str, Look)> = Vec::new();
        let mut out: Vec<(String, Look, bool)> = Vec::new();
        for s in self.panels.iter().flat_map(|p| &p.series) {
            let drawn = s.points.iter().any(|p| p.0.is_finite() && p.1.is_finite()) || !s.failed.is_empty();
            if drawn && !seen.iter().any(|(n, l)| *n == s.name && *l == s.look) {
                seen.push((&s.name, s.look));
                let label = if s.note.is_empty() { s.name.clone() } else { format!("{} ({})", s.name, s.note) };
                out.push((label, s.look, s.scatter));
            }
        }
        out
    }
}

/// A table that replaces a chart whose series would be one point each or constant lines (issue #34,
/// item 6): `boltz plot` writes it into the directory's gallery, under the charts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// What the table replaces (`attention_rank`, `capacity_at_one_n`).
    pub name: String,
    /// Heading.
    pub title: String,
    /// What one row is, the fixed parameters.
    pub note: String,
    /// Column names.
    pub header: Vec<String>,
    /// Cells, one row per entry.
    pub rows: Vec<Vec<String>>,
    /// The charts it stands in for (`boltz plot` removes their files where an earlier run drew them).
    pub replaces: Vec<String>,
}

impl Table {
    /// The table as Markdown: its title as a heading, the note, then the rows.
    pub fn markdown(&self) -> String {
        let cell = |c: &str| c.replace('|', "\\|").replace('\n', " ");
        let mut out = format!("### {}\n\n{}\n\n", self.title, self.note);
        out.push_str(&format!("| {} |\n", self.header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
        out.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")));
        }
        out
    }
}

/// A contact sheet of one results directory (issue #34, item 7): every chart under its title, with its
/// fixed parameters as the line under it, then every table; `prefix` is the charts' path relative to the
/// gallery file (`""` beside it, `"reproduce/"` from the parent).
pub fn gallery_section(heading: &str, prefix: &str, charts: &[Chart], tables: &[Table]) -> String {
    let mut out = format!("## {heading}\n\n");
    for c in charts {
        out.push_str(&format!("### {}\n\n![{}]({prefix}{}.png)\n\n", c.title, c.name, c.name));
        if !c.subtitle.is_empty() {
            out.push_str(&format!("{}\n\n", c.subtitle.join(" · ")));
        }
    }
    for t in tables {
        out.push_str(&t.markdown().replacen("### ", "### Table: ", 1));
        out.push('\n');
    }
    out
}

/// The first lines of a gallery file: what it is and the command that regenerates it.
pub fn gallery_header(command: &str) -> String {
    format!(
        "# Gallery\n\nEvery chart and table of this directory on one page, regenerated by `{command}` from the \
         result files alone (never edit by hand). Charts are PNG here; each has an SVG and a PDF beside it.\n\n"
    )
}

/// The tables the result files call for instead of charts ([`Table`]): the attention ranks where they are
/// the same at every N, and the whole capacity sweep where it has one N.
pub fn tables(results: &BTreeMap<String, ResultFile>) -> Result<Vec<Table>> {
    let mut out = Vec::new();
    if let Some(cap) = results.get("capacity") {
        let rows: Vec<ConstructionRow> = rows::typed("capacity", &cap.rows)?;
        let generated: Vec<ConstructionRow> = rows.into_iter().filter(|r| r.family.is_none()).collect();
        capacity::capacity_tables(&generated, &cap.config, &mut out);
    }
    Ok(out)
}

/// Every chart the result files allow, drawn from their typed rows ([`boltz_lab::rows`]); a row that does
/// not match its experiment's row type is an error naming it.
pub fn charts(results: &BTreeMap<String, ResultFile>) -> Result<Vec<Chart>> {
    let mut out = Vec::new();
    if let Some(cap) = results.get("capacity") {
        let rows: Vec<ConstructionRow> = rows::typed("capacity", &cap.rows)?;
        // The sweep over N on generated data; rows of dataset files (`family` = `file:…`) are not on its axes.
        let generated: Vec<ConstructionRow> = rows.into_iter().filter(|r| r.family.is_none()).collect();
        capacity_charts(&generated, &cap.config, cap.meta.threads, &mut out);
    }
    if let Some(adv) = results.get("adversarial") {
        let rows: Vec<ConstructionRow> = rows::typed("adversarial", &adv.rows)?;
        out.push(adversarial_chart(&rows, &adv.config));
    }
    if let Some(sep) = results.get("separation") {
        let rows: Vec<SeparationRow> = rows::typed("separation", &sep.rows)?;
        out.push(separation_chart(&rows, &sep.config));
    }
    if let Some(app) = results.get("approximation") {
        let rows: Vec<ApproximationRow> = rows::typed("approximation", &app.rows)?;
        out.extend(approximation_charts(&rows, &app.config));
    }
    if let Some(tr) = results.get("trained") {
        let rows: Vec<TrainedRow> = rows::typed("trained", &tr.rows)?;
        let built = match results.get("capacity") {
            Some(cap) => rows::typed::<ConstructionRow>("capacity", &cap.rows)?.into_iter().filter(|r| r.family.is_none()).collect(),
            None => Vec::new(),
        };
        out.push(trained_chart(&rows, &tr.config, &built));
    }
    out.iter_mut().for_each(explain_coinciding);
    Ok(out)
}

/// Whether every point of `under` lies on a point of `over` (the same x, y equal to 1 part in 10⁹): drawn
/// first, `under`'s line and markers are hidden beneath `over`'s wherever they both are.
pub fn coincides(under: &Series, over: &Series) -> bool {
    let same = |a: f64, b: f64| a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    let drawn: Vec<&(f64, f64)> = under.points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    !drawn.is_empty() && drawn.iter().all(|(x, y)| over.points.iter().any(|(ox, oy)| same(*x, *ox) && same(*y, *oy)))
}

/// Whether `under`, drawn before `over`, is hidden by it: every point coincides ([`coincides`]), and what
/// `under` draws `over` draws too where it lies (markers hide markers, lines hide lines: a point on a
/// reference line stays visible, and so does a line through a later series' bare points).
pub fn hidden_under(under: &Series, over: &Series) -> bool {
    let markers_hidden = !under.is_measured() || over.is_measured();
    let line_hidden = under.scatter || !over.scatter;
    markers_hidden && line_hidden && coincides(under, over)
}

/// The words [`explain_coinciding`] puts in a hidden series' legend note.
pub const DRAWN_UNDER: &str = "drawn under it";

/// Every series visible or explained (issue #34, item 2): a series hidden under a later series of its
/// panel ([`hidden_under`]) gets a legend note, "mean pooling (equal to “fewest bits” in the f64
/// panel, drawn under it)", wherever it appears (a legend entry is one name). Decided from the data, so a
/// re-run where the two differ draws them apart without the note.
pub fn explain_coinciding(chart: &mut Chart) {
    // (hidden series, the series over it, panel title) in drawing order.
    let mut hidden: Vec<(String, String, String)> = Vec::new();
    for panel in &chart.panels {
        for (i, under) in panel.series.iter().enumerate() {
            if let Some(over) = panel.series[i + 1..].iter().find(|over| over.name != under.name && hidden_under(under, over)) {
                hidden.push((under.name.clone(), over.name.clone(), panel.title.clone()));
            }
        }
    }
    let mut notes: BTreeMap<String, String> = BTreeMap::new();
    for (name, _, _) in &hidden {
        if notes.contains_key(name) {
            continue;
        }
        let all: Vec<&(String, String, String)> = hidden.iter().filter(|(n, _, _)| n == name).collect();
        let appears = chart.panels.iter().filter(|p| p.series.iter().any(|s| &s.name == name)).count();
        let mut overs: Vec<&str> = all.iter().map(|(_, o, _)| o.as_str()).collect();
        overs.dedup();
        let over = overs.join("” / “");
        let note = if all.len() == appears || all.iter().all(|(_, _, t)| t.is_empty()) {
            format!("equal to “{over}”, {DRAWN_UNDER}")
        } else {
            let panels: Vec<&str> = all.iter().map(|(_, _, t)| t.as_str()).collect();
            format!("equal to “{over}” in {}, {DRAWN_UNDER}", panels.join(", "))
        };
        notes.insert(name.clone(), note);
    }
    for s in chart.panels.iter_mut().flat_map(|p| p.series.iter_mut()) {
        if let Some(note) = notes.get(&s.name) {
            s.note = note.clone();
        }
    }
}

/// `chart` after [`explain_coinciding`].
fn explained(mut chart: Chart) -> Chart {
    explain_coinciding(&mut chart);
    chart
}

#[cfg(test)]
mod tests;
