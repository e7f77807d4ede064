//! The one pool builder of the host backends (cpu, blas and bigfloat). The thread rule itself (`None` or
//! 0 means all cores) lives in [`boltz_core::threads`] and is re-exported here; a backend's pool of
//! workers is built by [`worker_pool`] only.

use boltz_core::{Error, Result};

pub use boltz_core::threads::{all_cores, resolve};

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
    fn pools_have_the_count_asked() {
        assert_eq!(worker_pool("test", 3).unwrap().current_num_threads(), 3);
        let err = worker_pool("test", 0).unwrap_err().to_string();
        assert!(err.contains("threads") && err.contains("at least one"), "{err}");
    }
}
