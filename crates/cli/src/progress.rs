//! The CLI's view of [`boltz_lab::progress`]: a bar on a terminal, one line per step on stderr otherwise
//! (Slurm logs, CI), nothing when asked for nothing.

use std::io::IsTerminal as _;

use boltz_lab::progress::{Event, Progress};

/// A progress bar for the suite's points.
pub(crate) struct Bar {
    bar: indicatif::ProgressBar,
    /// No terminal: one line per step instead of the (invisible) bar.
    plain: bool,
}

impl Bar {
    /// A bar on stderr (lines when stderr is not a terminal).
    pub(crate) fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        Self { bar, plain: !std::io::stderr().is_terminal() }
    }
}

impl Progress for Bar {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Started { total, done, kept_in } => {
                self.bar.set_length(total as u64);
                self.bar.set_position(done as u64);
                if done > 0 {
                    let kept = kept_in.map(|p| format!(" in {}", p.display())).unwrap_or_default();
                    boltz_lab::note(format_args!("resuming: {done} of {total} points already finished{kept}"));
                }
            }
            Event::Step { done, total, label } => {
                self.bar.set_message(label.to_string());
                if self.plain {
                    boltz_lab::note(format_args!("[{}/{total}] {label}", done + 1));
                }
            }
            Event::Finished { done, .. } => self.bar.set_position(done as u64),
            Event::Ended => self.bar.finish_and_clear(),
        }
    }
}

/// How often [`watched`] reads the watch.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// A stage shorter than this shows nothing (no silent minutes, no flicker either).
const QUIET_FOR: std::time::Duration = std::time::Duration::from_secs(2);
/// Without a terminal, a running stage's line repeats this often.
const LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `f` on a worker thread under a watch (`boltz_core::watch`: the stages of bigfloat, reference and
/// cpu forwards, decoding checks and bit searches, per sequence) and shows every stage that runs longer
/// than [`QUIET_FOR`]: on a terminal a bar with the stage, its rate and an ETA; otherwise (logs, CI) a
/// line every [`LINE_EVERY`] with the same numbers.
pub(crate) fn watched<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use boltz_core::watch::Watch;
    use std::time::Instant;
    let watch = Watch::new();
    let terminal = std::io::stderr().is_terminal();
    std::thread::scope(|s| {
        let worker = s.spawn(|| watch.scope(f));
        let bar = indicatif::ProgressBar::hidden();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})") {
            bar.set_style(style.progress_chars("=> "));
        }
        let (mut stages, mut started, mut last_line) = (0, Instant::now(), None::<Instant>);
        while !worker.is_finished() {
            std::thread::sleep(POLL);
            let now = watch.snapshot();
            if now.stages != stages {
                (stages, started, last_line) = (now.stages, Instant::now(), None);
                bar.reset();
                bar.set_length(now.total.unwrap_or(0) as u64);
                bar.set_message(now.stage.clone());
            }
            bar.set_position(now.done as u64);
            if started.elapsed() < QUIET_FOR || now.stage.is_empty() {
                continue;
            }
            if terminal {
                if bar.is_hidden() {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                }
            } else if last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY) {
                last_line = Some(Instant::now());
                let secs = started.elapsed().as_secs_f64();
                let rate = now.done as f64 / secs;
                let left = match now.total {
                    Some(total) if rate > 0.0 => format!(", about {:.0} s left", total.saturating_sub(now.done) as f64 / rate),
                    _ => String::new(),
                };
                let of = now.total.map(|t| format!("/{t}")).unwrap_or_default();
                boltz_lab::note(format_args!("  {}: {}{of} in {secs:.0} s ({rate:.1}/s{left})", now.stage, now.done));
            }
        }
        bar.finish_and_clear();
        match worker.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
