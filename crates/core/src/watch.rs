//! Watching a long computation from outside it: stopping it early (Python's Ctrl-C) and counting its work
//! (a progress bar), without threading a parameter through every function.
//!
//! A caller runs the computation under [`Watch::scope`] (on the thread that runs it). The library reports
//! at its safe points, all through [`here`]: a stage starts ([`Here::stage`]: "bigfloat forward at 512
//! bits", 300 sequences), a unit of it finishes ([`Here::done`]), and at each of them it asks whether to go
//! on ([`Here::checkpoint`], an [`Error::Interrupted`] once [`Watch::stop`] was called). Safe points are the
//! sequences of a forward or a decoding check, the probes of a bits search and the candidates of a
//! one-layer build, so a stop takes effect within one sequence's forward; nothing is written at a safe
//! point, so a stop leaves no file half-written.
//!
//! Without a watch (the CLI, the suite, tests) every call is a thread-local read and nothing else. The
//! watch is a thread-local of the calling thread; a parallel site captures [`here`] before it hands work
//! to its pool (rayon's workers do not see the caller's thread-locals) and reports through the capture.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Error, Result};

/// What a watched computation is doing now: its stage, and how much of the stage is done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The stage ("bigfloat forward at 512 bits"); empty before the first.
    pub stage: String,
    /// Units of the stage finished (sequences, candidates, probes).
    pub done: usize,
    /// Units in the stage, when known.
    pub total: Option<usize>,
    /// Stages started so far (a new stage with the same name still counts: a progress bar restarts).
    pub stages: usize,
}

/// The shared state of one watched computation: the stop request and the progress counters. Made by the
/// watcher ([`Watch::new`]), read by it while the computation runs on another thread.
#[derive(Debug, Default)]
pub struct Watch {
    stop: AtomicBool,
    done: AtomicUsize,
    stage: Mutex<(String, Option<usize>, usize)>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Watch>>> = const { RefCell::new(None) };
}

impl Watch {
    /// A new watch: not stopped, no stage.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `f` on this thread under the watch: [`here`] inside it (and in what it calls on this thread)
    /// reports to this watch. The previous watch of the thread, if any, is restored afterwards.
    pub fn scope<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<Watch>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| *c.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(Arc::clone(self))));
        f()
    }

    /// Asks the computation to stop: its next safe point returns [`Error::Interrupted`].
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether [`Self::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The current stage and its progress.
    pub fn snapshot(&self) -> Snapshot {
        let stage = self.stage.lock().unwrap_or_else(PoisonError::into_inner);
        Snapshot { stage: stage.0.clone(), done: self.done.load(Ordering::SeqCst), total: stage.1, stages: stage.2 }
    }
}

/// The watch of the calling thread (or none), to report to from here and from the workers a parallel site
/// hands work to. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Here(Option<Arc<Watch>>);

/// The calling thread's watch: [`Watch::scope`]'s, or none.
pub fn here() -> Here {
    Here(CURRENT.with(|c| c.borrow().clone()))
}

impl Here {
    /// `Ok`, or [`Error::Interrupted`] once the watcher asked to stop.
    pub fn checkpoint(&self) -> Result<()> {
        match &self.0 {
            Some(w) if w.stopped() => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }

    /// A stage starts, of `total` units when known; its count starts at zero. A safe point.
    pub fn stage(&self, name: impl FnOnce() -> String, total: Option<usize>) -> Result<()> {
        if let Some(w) = &self.0 {
            let mut stage = w.stage.lock().unwrap_or_else(PoisonError::into_inner);
            *stage = (name(), total, stage.2 + 1);
            w.done.store(0, Ordering::SeqCst);
        }
        self.checkpoint()
    }

    /// `units` more of the stage are finished. A safe point.
    pub fn done(&self, units: usize) -> Result<()> {
        if let Some(w) = &self.0 {
            w.done.fetch_add(units, Ordering::SeqCst);
        }
        self.checkpoint()
    }
}

/// [`Here::checkpoint`] of the calling thread: `Ok`, or [`Error::Interrupted`] once its watcher asked to stop.
pub fn checkpoint() -> Result<()> {
    here().checkpoint()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_watch_nothing_is_counted_or_stopped() {
        let here = here();
        assert!(here.0.is_none());
        here.stage(|| unreachable!("the name is not built without a watch"), Some(3)).expect("no watch, no stop");
        here.done(1).expect("no watch, no stop");
    }

    #[test]
    fn a_stop_reaches_the_next_safe_point_and_the_scope_ends_with_it() {
        let watch = Watch::new();
        let steps = watch.scope(|| {
            let here = here();
            here.stage(|| "loop".into(), Some(10))?;
            for i in 0..10 {
                if i == 4 {
                    watch.stop();
                }
                if let Err(e) = here.done(1) {
                    return Ok::<_, Error>((i, e));
                }
            }
            unreachable!("the stop at step 4 is seen at step 4");
        });
        let (step, error) = steps.expect("the loop ran");
        assert_eq!(step, 4);
        assert!(matches!(error, Error::Interrupted), "{error:?}");
        assert_eq!(watch.snapshot(), Snapshot { stage: "loop".into(), done: 5, total: Some(10), stages: 1 });
        // Outside the scope, the thread has no watch again.
        assert!(here().0.is_none());
        checkpoint().expect("outside the scope nothing is stopped");
    }

    #[test]
    fn a_capture_reports_from_other_threads_and_scopes_nest() {
        let outer = Watch::new();
        let inner = Watch::new();
        outer.scope(|| {
            inner.scope(|| {
                let here = here();
                std::thread::scope(|s| {
                    for _ in 0..4 {
                        let here = here.clone();
                        s.spawn(move || here.done(2).expect("not stopped"));
                    }
                });
            });
            here().done(1).expect("not stopped");
        });
        assert_eq!(inner.snapshot().done, 8);
        assert_eq!(outer.snapshot().done, 1);
    }
}
