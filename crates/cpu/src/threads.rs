//! The one thread rule and the one pool builder of the host backends (cpu, blas and bigfloat), and of
//! everything that sizes work by the machine's cores (constructions, the CLI).
//!
//! The rule: a requested thread count of `None` or 0 means *all cores* ([`all_cores`]); any other count
//! is taken as given. A backend's pool of workers is built by [`worker_pool`] only.

use boltz_core::{Error, Result};

/// The logical CPUs this process may use (`std::thread::available_parallelism`; 1 where it cannot be
/// read).
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The thread rule: `None` or 0 means [`all_cores`]; anything else as given.
pub fn resolve(requested: Option<usize>) -> usize {
    match requested {
        None | Some(0) => all_cores(),
        Some(t) => t,
    }
}

/// A backend's own pool of `threads` rayon workers (named `boltz-<backend>-<i>`); zero threads is an
/// error ([`resolve`] turns "unset" into a count before a pool is built).
pub fn worker_pool(backend: &'static str, threads: usize) -> Result<rayon::ThreadPool> {
    if threads == 0 {
        return Err(Error::InvalidParameter { name: "threads".into(), reason: "at least one thread is needed".into() });
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("boltz-{backend}-{i}"))
        .build()
        .map_err(|e| Error::Backend { backend, op: "thread pool", message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_zero_mean_all_cores_and_pools_have_the_count_asked() {
        assert!(all_cores() >= 1);
        assert_eq!(resolve(None), all_cores());
        assert_eq!(resolve(Some(0)), all_cores());
        assert_eq!(resolve(Some(3)), 3);
        assert_eq!(worker_pool("test", 3).unwrap().current_num_threads(), 3);
        let err = worker_pool("test", 0).unwrap_err().to_string();
        assert!(err.contains("threads") && err.contains("at least one"), "{err}");
    }
}
