//! Bounded resources: thread counts, memory estimates checked before anything large is allocated, and
//! time estimates checked before a run that could not end in a day starts.
//!
//! The estimates are **lower bounds** of what a command allocates (the inputs and the stored weights at
//! the smallest precision a construction can use), computed with checked arithmetic. A command whose
//! lower bound exceeds the memory available (or `--max-memory`) is refused with the parameter and the
//! estimate named, instead of aborting in an allocation or growing until the OOM killer stops it.

use anyhow::{bail, Result};

/// Worker threads from a `--threads`/config value: `None` or 0 means all cores; more than
/// [`max_threads`] is refused.
pub fn threads(requested: Option<usize>, what: &str) -> Result<usize> {
    match boltz_cpu::threads::resolve(requested) {
        t if t > max_threads() => {
            bail!("{what} = {t}: more than {} threads (64 per core, {} cores) is refused", max_threads(), boltz_cpu::threads::all_cores())
        }
        t => Ok(t),
    }
}

/// The largest thread count accepted: 64 per logical CPU (oversubscription beyond that only costs memory
/// and scheduling, and 10⁶ threads exhaust the process's memory map).
pub fn max_threads() -> usize {
    64 * boltz_cpu::threads::all_cores()
}

/// Bytes of memory available to this process: `MemAvailable` of `/proc/meminfo`, capped by a cgroup v2
/// limit (`/sys/fs/cgroup/memory.max`) when one is set. `None` where neither can be read.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse::<u64>().ok());
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a byte count: `123`, `512K`, `8M`, `16G`, `1T` (binary units; a trailing `B`/`iB` is allowed).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let t = lower.strip_suffix("ib").or_else(|| lower.strip_suffix('b')).unwrap_or(&lower);
    let (digits, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = digits.trim().parse().map_err(|_| format!("expected a byte count such as 512M or 16G, got {s:?}"))?;
    n.checked_mul(1u64 << shift).filter(|&b| b > 0).ok_or_else(|| format!("{s:?}: must be between 1 byte and 16 EiB"))
}

/// A human-readable byte count (binary units).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The memory a command may use: `--max-memory`, or what the machine has available.
#[derive(Clone, Copy, Debug)]
pub struct MemoryBudget {
    /// The limit in bytes (`None`: unknown, nothing is refused).
    pub limit: Option<u64>,
    /// Whether the limit came from `--max-memory`.
    pub explicit: bool,
}

impl MemoryBudget {
    /// `--max-memory` when given, else the available memory.
    pub fn new(max_memory: Option<u64>) -> Self {
        match max_memory {
            Some(b) => Self { limit: Some(b), explicit: true },
            None => Self { limit: available_bytes(), explicit: false },
        }
    }

    /// Refuses `estimate` (a lower bound, `None` when it overflows 64 bits) when it exceeds the budget.
    /// `what` names the parameters that drive the estimate.
    pub fn check(&self, what: &str, estimate: Option<u64>) -> Result<()> {
        let source = if self.explicit { "--max-memory" } else { "available memory" };
        match (estimate, self.limit) {
            (None, _) => bail!("{what}: the memory needed overflows 64 bits; refusing"),
            (Some(e), Some(limit)) if e > limit => bail!(
                "{what}: needs at least {} of memory, more than the {} of {source}; use smaller sizes{}",
                human(e),
                human(limit),
                if self.explicit { "" } else { " or raise the limit with --max-memory" }
            ),
            _ => Ok(()),
        }
    }
}

/// Checked product of sizes.
fn product(factors: &[u64]) -> Option<u64> {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f))
}

fn sum(terms: &[Option<u64>]) -> Option<u64> {
    terms.iter().try_fold(0u64, |acc, t| acc.checked_add((*t)?))
}

/// Bytes of one arbitrary-precision number at the smallest precision a construction stores (a 64-bit
/// mantissa word plus the number's header).
const BIGREAL_BYTES: u64 = 64;

/// Lower bound of a memorizer run on N sequences of n tokens in d dimensions drawn from a generated
/// vocabulary of `vocab` tokens (0 for data already in memory): the vocabulary in f64, the dataset in f64
/// (inputs and targets), the context ids, and the FFN of the one-layer memorizer (width ≥ the n·N context
/// ids, each with d + 2 stored numbers) — the deep constructions store at least as many.
pub fn memorize_bytes(sequences: usize, length: usize, dim: usize, vocab: usize) -> Option<u64> {
    let (n_seq, n, d) = (sequences as u64, length as u64, dim as u64);
    let tokens = product(&[n_seq, n])?;
    sum(&[
        product(&[vocab as u64, d, 8]),
        product(&[tokens, d, 2, 8]),
        product(&[tokens, BIGREAL_BYTES]),
        product(&[tokens, d.checked_add(2)?, BIGREAL_BYTES]),
    ])
}

/// Arithmetic operations, a lower bound, of verifying a memorizer of N sequences of n tokens in d
/// dimensions: every build verifies its model once in arbitrary precision, and that forward evaluates, for
/// each of the nN tokens, the FFN's ≥ nN units with d + 2 numbers each (see [`memorize_bytes`]); the deep
/// constructions evaluate at least as many.
pub fn memorize_ops(sequences: usize, length: usize, dim: usize) -> Option<u64> {
    let tokens = product(&[sequences as u64, length as u64])?;
    product(&[tokens, tokens, (dim as u64).checked_add(2)?])
}

/// The rate time estimates assume: 10⁸ arbitrary-precision operations per second and thread, above what
/// the bigfloat backend reaches even at its smallest precision, so an estimated time is a lower bound
/// (measured on README example 1's forward, 3.84·10⁸ counted operations on an Intel Xeon core: 5.2·10⁷/s
/// at 64 bits, 2.6·10⁶/s at its build's 5 575 bits).
pub const EXACT_OPS_PER_SECOND: f64 = 1e8;

/// Parses a duration: seconds (`90`, `90s`), minutes (`30m`), hours (`24h`), days (`2d`), or `inf`.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "inf" {
        return Ok(f64::INFINITY);
    }
    let (digits, unit) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1.0),
        Some('m') => (&t[..t.len() - 1], 60.0),
        Some('h') => (&t[..t.len() - 1], 3600.0),
        Some('d') => (&t[..t.len() - 1], 86_400.0),
        _ => (t.as_str(), 1.0),
    };
    match digits.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v * unit),
        _ => Err(format!("expected a positive duration such as 600, 30m, 24h, 2d or inf, got {s:?}")),
    }
}

/// A human-readable duration.
pub fn human_seconds(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 2.0 * 86_400.0 => format!("{:.1} h", s / 3600.0),
        s if s < 1e6 * 86_400.0 => format!("{:.0} days", s / 86_400.0),
        s => format!("{:.1e} days", s / 86_400.0),
    }
}

/// The time a command may take before it is refused: `--max-time`, or one day.
#[derive(Clone, Copy, Debug)]
pub struct TimeBudget {
    /// The limit in seconds (infinite: nothing is refused).
    pub seconds: f64,
    /// Whether the limit came from `--max-time`.
    pub explicit: bool,
}

impl TimeBudget {
    /// The default limit: one day.
    pub const DEFAULT_SECONDS: f64 = 86_400.0;

    /// `--max-time` when given, else one day.
    pub fn new(max_seconds: Option<f64>) -> Self {
        match max_seconds {
            Some(s) => Self { seconds: s, explicit: true },
            None => Self { seconds: Self::DEFAULT_SECONDS, explicit: false },
        }
    }

    /// Refuses `ops` arbitrary-precision operations (a lower bound, `None` when it overflows 64 bits) on
    /// `threads` threads when, at [`EXACT_OPS_PER_SECOND`] per thread, they take longer than the budget.
    /// `what` names the parameters that drive the estimate.
    pub fn check(&self, what: &str, ops: Option<u64>, threads: usize) -> Result<()> {
        let source = if self.explicit { "--max-time" } else { "the default limit" };
        let seconds = ops.map(|o| o as f64 / (EXACT_OPS_PER_SECOND * threads.max(1) as f64));
        match seconds {
            _ if self.seconds.is_infinite() => Ok(()),
            None => bail!("{what}: the arithmetic it needs overflows 64 bits; refusing"),
            Some(s) if s > self.seconds => bail!(
                "{what}: at least {:.1e} arbitrary-precision operations to verify the model, {} or more on {threads} thread(s), \
                 beyond the {} of {source}; use smaller sizes{}",
                ops.unwrap_or(0) as f64,
                human_seconds(s),
                human_seconds(self.seconds),
                if self.explicit { "" } else { " or raise the limit with --max-time (e.g. 7d, inf)" }
            ),
            _ => Ok(()),
        }
    }
}

/// Lower bound of a training run (`boltz train`, Python-free): the model of `shape` in f64 with Adam's
/// gradient and two moments (4 numbers per parameter), the forward's cached activations (per block and
/// token: the residual, the FFN's hidden layer and the attention weights over n keys per head), and the
/// dataset of N sequences of n tokens with its generated vocabulary.
pub fn train_bytes(shape: &boltz_train::ModelShape, sequences: usize, length: usize, vocab: usize) -> Option<u64> {
    let (d, s, q, h, b) = (shape.dim as u64, shape.head_size as u64, shape.ffn_width as u64, shape.heads as u64, shape.blocks as u64);
    let (n, tokens) = (length as u64, product(&[sequences as u64, length as u64])?);
    let weight = match shape.rank {
        Some(r) => product(&[r as u64, d.checked_add(s)?])?,
        None => product(&[d, s])?,
    };
    let attention = product(&[h, 4, weight])?;
    let ffn = sum(&[product(&[2, d, q]), Some(q), Some(d)])?;
    let params = product(&[b, attention.checked_add(ffn)?])?;
    let activations = product(&[tokens, b, sum(&[product(&[2, d]), Some(q), product(&[h, n])])?, 8])?;
    sum(&[product(&[params, 4, 8]), Some(activations), product(&[tokens, d, 2, 8]), product(&[vocab as u64, d, 8])])
}

/// Lower bound of a batched forward over `batch` sequences of n tokens: input, output and one
/// hidden activation of width `width` per token, in `elem` bytes.
pub fn forward_bytes(batch: usize, length: usize, dim: usize, width: usize, elem: usize) -> Option<u64> {
    let tokens = product(&[batch as u64, length as u64])?;
    product(&[tokens, (dim as u64).checked_mul(2)?.checked_add(width as u64)?, elem as u64])
}

/// Lower bound of the approximator (Proposition 1): `samples` random inputs of n tokens in d dimensions,
/// with their targets and outputs, in f64 (the grid it enumerates is bounded by the construction itself).
pub fn approximate_bytes(samples: usize, length: usize, dim: usize) -> Option<u64> {
    product(&[samples as u64, length as u64, dim as u64, 3, 8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_parse() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("8M"), Ok(8 << 20));
        assert_eq!(parse_bytes("16GiB"), Ok(16 << 30));
        assert_eq!(parse_bytes("2tb"), Ok(2 << 40));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }

    #[test]
    fn estimates_overflow_to_none_and_refuse() {
        assert_eq!(memorize_bytes(usize::MAX, 8, 4, 16), None);
        assert!(memorize_bytes(100, 8, 4, 16).is_some_and(|b| b < 1 << 20));
        let shape =
            |dim, ffn_width, blocks, heads| boltz_train::ModelShape { dim, blocks, heads, head_size: dim, rank: Some(1), ffn_width };
        assert!(train_bytes(&shape(4, 64, 1, 1), 16, 4, 16).is_some_and(|b| b < 1 << 20));
        for huge in [shape(1_000_000, 64, 1, 1), shape(4, 1 << 40, 1, 1), shape(4, 64, 1 << 30, 1), shape(4, 64, 1, 1 << 30)] {
            assert!(train_bytes(&huge, 16, 4, 16).is_none_or(|b| b > 1 << 32), "{huge:?}");
        }
        // A vocabulary of 10¹² tokens in d = 4 is 32 TB (29 TiB) of f64 before anything is built.
        assert!(memorize_bytes(10, 8, 4, 1_000_000_000_000).is_some_and(|b| b > 29 << 40));
        assert_eq!(approximate_bytes(usize::MAX, 2, 2), None);
        let budget = MemoryBudget { limit: Some(1 << 30), explicit: true };
        assert!(budget.check("x", memorize_bytes(100, 8, 4, 16)).is_ok());
        let err = budget.check("--sequences 10000000", memorize_bytes(10_000_000, 8, 4, 16)).unwrap_err().to_string();
        assert!(err.contains("--sequences 10000000") && err.contains("GiB") && err.contains("--max-memory"), "{err}");
        assert!(budget.check("x", None).unwrap_err().to_string().contains("overflows"));
    }

    #[test]
    fn time_estimates_refuse_runs_beyond_the_budget() {
        assert_eq!(parse_seconds("90"), Ok(90.0));
        assert_eq!(parse_seconds("30m"), Ok(1800.0));
        assert_eq!(parse_seconds("2d"), Ok(172_800.0));
        assert_eq!(parse_seconds("inf"), Ok(f64::INFINITY));
        for bad in ["0", "-5m", "soon", "nanh"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        // (nN)²(d + 2): 8 000 tokens in d = 4 are 3.84·10⁸ operations.
        assert_eq!(memorize_ops(1000, 8, 4), Some(384_000_000));
        assert_eq!(memorize_ops(usize::MAX, 8, 4), None);
        let day = TimeBudget::new(None);
        // The README's example (N = 1 000, n = 8, d = 4) and d = 10⁶ at N = 10 run; n = 10⁶ or a suite
        // point with d = 10⁶ at N = 1 000 (6.4·10¹³ operations) do not.
        assert!(day.check("x", memorize_ops(1000, 8, 4), 1).is_ok());
        assert!(day.check("x", memorize_ops(10, 8, 1_000_000), 1).is_ok());
        let err = day.check("--length 1000000", memorize_ops(10, 1_000_000, 4), 2).unwrap_err().to_string();
        assert!(err.contains("--length 1000000") && err.contains("days") && err.contains("--max-time"), "{err}");
        assert!(day.check("capacity.dim = 1000000", memorize_ops(1000, 8, 1_000_000), 2).is_err());
        assert!(TimeBudget::new(Some(f64::INFINITY)).check("x", memorize_ops(10, 1_000_000, 4), 1).is_ok());
        assert!(TimeBudget::new(Some(1.0)).check("x", memorize_ops(1000, 8, 4), 1).unwrap_err().to_string().contains("--max-time"));
        assert!(day.check("x", None, 1).unwrap_err().to_string().contains("overflows"));
    }

    #[test]
    fn thread_cap() {
        assert!(threads(Some(1), "--threads").is_ok());
        assert!(threads(None, "--threads").is_ok_and(|t| t >= 1));
        let err = threads(Some(1_000_000), "--threads").unwrap_err().to_string();
        assert!(err.contains("--threads = 1000000"), "{err}");
    }
}
