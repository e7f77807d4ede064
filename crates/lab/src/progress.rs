//! How long jobs report as they go, without drawing anything: the suite calls a [`Progress`]; the CLI
//! draws a bar (or, without a terminal, one line per step), and the Python package can forward the events
//! to a callback.

/// One step of a long job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The job starts: `total` steps, of which `done` were finished by an earlier run (resumed).
    Started {
        /// Steps in all.
        total: usize,
        /// Steps already finished before this run.
        done: usize,
        /// Where the finished steps are kept (a checkpoint file), when they are.
        kept_in: Option<&'a std::path::Path>,
    },
    /// A step starts (`done` steps are finished before it).
    Step {
        /// Steps finished so far.
        done: usize,
        /// Steps in all.
        total: usize,
        /// What the step is (e.g. the suite's point index and spec).
        label: &'a str,
    },
    /// A step finished (`done` now counts it).
    Finished {
        /// Steps finished so far.
        done: usize,
        /// Steps in all.
        total: usize,
    },
    /// The job ended (successfully or not); a bar can be cleared.
    Ended,
}

/// A receiver of [`Event`]s. Implementations must not fail or panic: progress never stops a run.
pub trait Progress {
    /// Receives one event.
    fn event(&self, event: Event<'_>);
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event<'_>) {}
}

impl<F: Fn(Event<'_>)> Progress for F {
    fn event(&self, event: Event<'_>) {
        self(event)
    }
}
