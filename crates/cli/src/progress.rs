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
