//! The one thread rule of the project: every backend, construction search, the CLI, the Python package
//! and the benches size their work by it.
//!
//! A requested thread count of `None` or 0 means *all cores* ([`all_cores`]); any other count is taken
//! as given. (The host backends build their worker pools from the resolved count: `boltz_cpu::worker_pool`.)

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_zero_mean_all_cores() {
        assert!(all_cores() >= 1);
        assert_eq!(all_cores(), std::thread::available_parallelism().map_or(1, |n| n.get()));
        assert_eq!(resolve(None), all_cores());
        assert_eq!(resolve(Some(0)), all_cores());
        assert_eq!(resolve(Some(3)), 3);
    }
}
