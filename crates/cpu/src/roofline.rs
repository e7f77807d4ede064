//! The machine's own ceiling (issue #30): the FMA peak per element type and thread count, measured with a
//! register-only kernel, and the memory bandwidth, measured with a STREAM-style triad. Together they are
//! the two roofs of a roofline (Williams, Waterman & Patterson, CACM 2009): a workload of arithmetic
//! intensity `I` FLOP/byte can run at most at `min(peak, I · bandwidth)`.
//!
//! A GEMM library's own throughput is *not* the machine's ceiling (Debian's OpenBLAS 0.3.21 reaches about
//! half the FMA peak of an AVX-512 Xeon), so benches are read against these numbers.
//!
//! * **Peak:** each thread runs `ACC` independent chains `acc ← acc·x + y` of fused multiply-adds in the
//!   widest vector instruction set the CPU has ([`Isa::detect`], chosen at run time: AVX-512F, AVX2 + FMA,
//!   NEON on aarch64, or a portable multiply-then-add), enough chains to cover the FMA latency on every
//!   pipe, with no memory traffic. With `x = y = 1` every lane ends at exactly the iteration count, so a
//!   test proves that the kernel performs the operations it is credited with ([`fma_chains`]).
//! * **Bandwidth:** `a[i] = b[i] + s·c[i]` over three `f64` arrays much larger than the last-level cache,
//!   counted as 24 bytes per element (STREAM's convention: no write-allocate traffic), each thread on its
//!   own contiguous slice, first touched by that thread.
//!
//! Both take the best of a few repetitions (a peak is a maximum) on scoped OS threads that start together
//! at a barrier; the time of a repetition is the slowest thread's.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

/// The CPU model as `/proc/cpuinfo` names it (`model name`), or the architecture where it cannot be read:
/// what every result records beside its timings.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The vector instruction set a register-only kernel runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// x86-64 AVX-512F: 512-bit FMA (16 f32 / 8 f64 lanes), 32 vector registers.
    Avx512,
    /// x86-64 AVX2 with FMA3: 256-bit FMA (8 f32 / 4 f64 lanes), 16 vector registers.
    Avx2Fma,
    /// aarch64 Advanced SIMD (always present there): 128-bit FMA (4 f32 / 2 f64 lanes).
    Neon,
    /// Whatever the baseline target vectorises a multiply followed by an add to (x86-64: SSE2).
    Portable,
}

impl Isa {
    /// Every instruction set, widest first.
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2Fma, Isa::Neon, Isa::Portable];

    /// The widest instruction set this CPU runs (detected at run time; the build targets the baseline).
    pub fn detect() -> Self {
        Self::ALL.into_iter().find(|isa| isa.available()).unwrap_or(Isa::Portable)
    }

    /// Whether this CPU runs the instruction set.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            Isa::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The name recorded in results (`avx512f`, `avx2+fma`, `neon`, `portable`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512f",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Neon => "neon",
            Isa::Portable => "portable",
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The element types whose FMA peak is measured.
pub trait PeakFloat: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// `f32` or `f64`.
    const DTYPE: &'static str;
    /// `1` in this type.
    const ONE: Self;
    /// Runs `chains` for `iters` iterations with `isa` (see [`fma_chains`]).
    fn chains(isa: Isa, iters: usize, x: Self, y: Self) -> Chains<Self>;
    /// The value as an `f64`.
    fn to_f64(self) -> f64;
}

/// What one run of the register-only kernel did: the final accumulators (every lane of every chain) and
/// the floating-point operations it performed (2 per lane per fused multiply-add).
#[derive(Clone, Debug)]
pub struct Chains<T> {
    /// Every lane of every chain after the last iteration.
    pub lanes: Vec<T>,
    /// Floating-point operations performed.
    pub flops: f64,
}

/// Independent accumulator chains per kernel: enough to hide a 4–5 cycle FMA latency on two pipes, and
/// to leave two registers for `x` and `y` (AVX-512: 32 registers, the rest: 16).
const CHAINS_WIDE: usize = 24;
const CHAINS: usize = 12;
/// Chains of the portable kernel (scalars the compiler vectorises).
const PORTABLE_LANES: usize = 32;

macro_rules! simd_chains {
    ($name:ident, $feature:literal, $t:ty, $vec:ty, $chains:expr, $set1:ident, $fma:ident, $store:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        fn $name(iters: usize, x: $t, y: $t) -> Vec<$t> {
            use std::arch::x86_64::*;
            const LANES: usize = std::mem::size_of::<$vec>() / std::mem::size_of::<$t>();
            let (vx, vy) = ($set1(x), $set1(y));
            let mut acc: [$vec; $chains] = [$set1(0.0); $chains];
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = $fma(*a, vx, vy);
                }
            }
            let mut out = vec![0.0; $chains * LANES];
            for (chunk, a) in out.chunks_exact_mut(LANES).zip(&acc) {
                // SAFETY: `chunk` holds exactly one vector's lanes; the store is unaligned.
                unsafe { $store(chunk.as_mut_ptr(), *a) };
            }
            out
        }
    };
}

simd_chains!(chains_avx512_f32, "avx512f", f32, __m512, CHAINS_WIDE, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps);
simd_chains!(chains_avx512_f64, "avx512f", f64, __m512d, CHAINS_WIDE, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_storeu_pd);
simd_chains!(chains_avx2_f32, "avx2,fma", f32, __m256, CHAINS, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps);
simd_chains!(chains_avx2_f64, "avx2,fma", f64, __m256d, CHAINS, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_storeu_pd);

/// The portable kernel: `PORTABLE_LANES` scalar chains that the compiler vectorises. On aarch64 `mul_add`
/// is one NEON `fmla` (FMA is part of the baseline there); elsewhere it is a multiply and an add (a libm
/// `fma` call would measure the library, not the machine). Both are 2 FLOPs per lane and iteration.
macro_rules! portable_chains {
    ($name:ident, $t:ty) => {
        fn $name(iters: usize, x: $t, y: $t) -> Vec<$t> {
            let mut acc = [0.0 as $t; PORTABLE_LANES];
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    #[cfg(target_arch = "aarch64")]
                    {
                        *a = a.mul_add(x, y);
                    }
                    #[cfg(not(target_arch = "aarch64"))]
                    {
                        *a = *a * x + y;
                    }
                }
            }
            acc.to_vec()
        }
    };
}
portable_chains!(chains_portable_f32, f32);
portable_chains!(chains_portable_f64, f64);

macro_rules! impl_peak_float {
    ($t:ty, $avx512:ident, $avx2:ident, $portable:ident) => {
        impl PeakFloat for $t {
            const DTYPE: &'static str = stringify!($t);
            const ONE: Self = 1.0;

            fn chains(isa: Isa, iters: usize, x: Self, y: Self) -> Chains<Self> {
                assert!(isa.available(), "the {isa} kernel cannot run on this CPU");
                let lanes = match isa {
                    // SAFETY: `isa.available()` (asserted above) detected AVX-512F.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { $avx512(iters, x, y) },
                    // SAFETY: `isa.available()` (asserted above) detected AVX2 and FMA.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe { $avx2(iters, x, y) },
                    _ => $portable(iters, x, y),
                };
                let flops = 2.0 * iters as f64 * lanes.len() as f64;
                Chains { lanes, flops }
            }

            fn to_f64(self) -> f64 {
                f64::from(self)
            }
        }
    };
}
impl_peak_float!(f32, chains_avx512_f32, chains_avx2_f32, chains_portable_f32);
impl_peak_float!(f64, chains_avx512_f64, chains_avx2_f64, chains_portable_f64);

/// One run of the register-only FMA kernel of `isa` on the calling thread: every chain iterates
/// `acc ← acc·x + y` `iters` times from 0 (panics if the CPU lacks `isa`).
pub fn fma_chains<T: PeakFloat>(isa: Isa, iters: usize, x: T, y: T) -> Chains<T> {
    T::chains(isa, iters, x, y)
}

/// Runs `work` on `threads` scoped threads that start together at a barrier, `reps` times; returns the
/// shortest repetition (each repetition lasting as long as its slowest thread) in seconds.
fn best_parallel_seconds(threads: usize, reps: usize, work: impl Fn(usize) + Sync) -> f64 {
    let threads = threads.max(1);
    let barrier = Barrier::new(threads);
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let slowest = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (barrier, work) = (&barrier, &work);
                    s.spawn(move || {
                        barrier.wait();
                        let start = Instant::now();
                        work(t);
                        start.elapsed().as_secs_f64()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(f64::INFINITY)).fold(0.0, f64::max)
        });
        best = best.min(slowest);
    }
    best
}

/// Iterations per peak measurement: about 10 ms per repetition on a current core, and few enough that
/// f32 chains stay exact (`x = y = 1` counts up to 2²⁴).
const PEAK_ITERS: usize = 1 << 21;
/// Repetitions of each measurement (the best is kept).
const REPS: usize = 5;

/// The FMA peak of `threads` threads in GFLOP/s for element type `T` with `isa` (best of a few runs).
pub fn fma_peak_gflops<T: PeakFloat>(isa: Isa, threads: usize) -> f64 {
    let threads = threads.max(1);
    let flops_per_thread = fma_chains::<T>(isa, 1, T::ONE, T::ONE).flops * PEAK_ITERS as f64;
    // One untimed run wakes the cores up (frequency ramp).
    black_box(fma_chains(isa, PEAK_ITERS / 4, black_box(T::ONE), black_box(T::ONE)));
    let seconds = best_parallel_seconds(threads, REPS, |_| {
        black_box(fma_chains(isa, PEAK_ITERS, black_box(T::ONE), black_box(T::ONE)));
    });
    flops_per_thread * threads as f64 / seconds / 1e9
}

/// `a[i] = b[i] + s·c[i]` (the STREAM triad).
fn triad(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
    for ((ai, bi), ci) in a.iter_mut().zip(b).zip(c) {
        *ai = bi + s * ci;
    }
}

/// One thread's slices `a`, `b`, `c` of the triad.
type TriadArrays = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Elements per array of the bandwidth measurement: 3 × 64 MiB of `f64`, larger than the last-level cache
/// of the machines the project runs on (32 MiB per CCD on AMD EPYC; a VM's slice of a Xeon's L3).
pub const TRIAD_ELEMENTS: usize = 1 << 23;

/// The memory bandwidth of `threads` threads in GB/s (10⁹ bytes per second): the best of a few STREAM
/// triads over arrays of `elements` `f64` each, 24 bytes counted per element.
pub fn triad_gb_per_s(threads: usize, elements: usize) -> f64 {
    let threads = threads.max(1);
    let chunk = elements.div_ceil(threads).max(1);
    // Each thread first-touches its own slices (pages land where that thread runs).
    let mut parts: Vec<TriadArrays> = Vec::with_capacity(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let len = chunk.min(elements.saturating_sub(t * chunk));
                s.spawn(move || (vec![0.0; len], vec![1.0; len], vec![2.0; len]))
            })
            .collect();
        parts.extend(handles.into_iter().filter_map(|h| h.join().ok()));
    });
    let cells: Vec<std::sync::Mutex<TriadArrays>> = parts.into_iter().map(std::sync::Mutex::new).collect();
    let run = |t: usize| {
        if let Some(cell) = cells.get(t) {
            let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
            let (a, b, c) = &mut *guard;
            triad(a, b, c, black_box(3.0));
            black_box(&a[..]);
        }
    };
    best_parallel_seconds(threads, 1, run); // untimed: faults every page in
    let seconds = best_parallel_seconds(threads, REPS, run);
    24.0 * elements as f64 / seconds / 1e9
}

/// The measured ceilings of this machine at one thread count: what every bench record carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Roofline {
    /// The instruction set of the peak kernels.
    pub isa: Isa,
    /// Threads of the measurement.
    pub threads: usize,
    /// FMA peak in f32, GFLOP/s.
    pub f32_gflops: f64,
    /// FMA peak in f64, GFLOP/s.
    pub f64_gflops: f64,
    /// STREAM triad bandwidth, GB/s.
    pub triad_gb_per_s: f64,
}

impl Roofline {
    /// Measures the ceilings with `threads` threads and the widest instruction set (about half a second).
    pub fn measure(threads: usize) -> Self {
        let isa = Isa::detect();
        Self {
            isa,
            threads: threads.max(1),
            f32_gflops: fma_peak_gflops::<f32>(isa, threads),
            f64_gflops: fma_peak_gflops::<f64>(isa, threads),
            triad_gb_per_s: triad_gb_per_s(threads, TRIAD_ELEMENTS),
        }
    }

    /// The FMA peak for `dtype` (`f32`, `f64`; any other name has none).
    pub fn peak_gflops(&self, dtype: &str) -> Option<f64> {
        match dtype.to_ascii_lowercase().as_str() {
            "f32" => Some(self.f32_gflops),
            "f64" => Some(self.f64_gflops),
            _ => None,
        }
    }

    /// The roofline bound of a workload of arithmetic intensity `flop_per_byte` in `dtype`:
    /// `min(peak, intensity · bandwidth)` in GFLOP/s.
    pub fn attainable_gflops(&self, dtype: &str, flop_per_byte: f64) -> Option<f64> {
        Some(self.peak_gflops(dtype)?.min(flop_per_byte * self.triad_gb_per_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels do exactly the work they are credited with: with `x = y = 1` each lane counts its
    /// iterations, so a kernel that skipped (or repeated) chains, lanes or iterations would end elsewhere.
    #[test]
    fn every_available_kernel_counts_its_iterations_in_every_lane() {
        let available: Vec<Isa> = Isa::ALL.into_iter().filter(|isa| isa.available()).collect();
        assert!(available.contains(&Isa::Portable));
        assert_eq!(Isa::detect(), available[0], "detect() is the widest available");
        for isa in available {
            for iters in [0, 1, 7, 1000] {
                let c32 = fma_chains::<f32>(isa, iters, 1.0, 1.0);
                assert!(c32.lanes.iter().all(|&l| l == iters as f32), "{isa} f32: {:?}", &c32.lanes[..4]);
                let c64 = fma_chains::<f64>(isa, iters, 1.0, 1.0);
                assert!(c64.lanes.iter().all(|&l| l == iters as f64), "{isa} f64");
                assert_eq!(c32.flops, 2.0 * iters as f64 * c32.lanes.len() as f64);
                // A vector holds twice the f32 lanes of f64.
                assert_eq!(c32.lanes.len(), if isa == Isa::Portable { PORTABLE_LANES } else { 2 * c64.lanes.len() }, "{isa}");
            }
            // A real multiply-add, not an increment: 3 iterations of a·2 + 1 from 0 give 7.
            assert!(fma_chains::<f64>(isa, 3, 2.0, 1.0).lanes.iter().all(|&l| l == 7.0), "{isa}");
        }
    }

    #[test]
    fn lane_counts_match_the_vector_widths() {
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::Avx2Fma.available() {
                assert_eq!(fma_chains::<f32>(Isa::Avx2Fma, 1, 1.0, 1.0).lanes.len(), CHAINS * 8);
                assert_eq!(fma_chains::<f64>(Isa::Avx2Fma, 1, 1.0, 1.0).lanes.len(), CHAINS * 4);
            }
            if Isa::Avx512.available() {
                assert_eq!(fma_chains::<f32>(Isa::Avx512, 1, 1.0, 1.0).lanes.len(), CHAINS_WIDE * 16);
            }
            assert!(!Isa::Neon.available());
        }
        assert_eq!(Isa::ALL.map(Isa::name), ["avx512f", "avx2+fma", "neon", "portable"]);
    }

    #[test]
    fn the_triad_computes_b_plus_s_c() {
        let (b, c) = ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]);
        let mut a = [0.0; 3];
        triad(&mut a, &b, &c, 0.5);
        assert_eq!(a, [3.0, 4.5, 6.0]);
    }

    #[test]
    fn measurements_are_finite_and_positive_and_the_roofline_takes_the_lower_roof() {
        // Tiny sizes: these check the plumbing (threads, counting), not the machine; the numbers that
        // matter come from `boltz bench`.
        let bw = triad_gb_per_s(2, 1 << 12);
        assert!(bw.is_finite() && bw > 0.0, "{bw}");
        let r = Roofline { isa: Isa::Portable, threads: 1, f32_gflops: 100.0, f64_gflops: 50.0, triad_gb_per_s: 10.0 };
        assert_eq!(r.attainable_gflops("f32", 1.0), Some(10.0));
        assert_eq!(r.attainable_gflops("F64", 1000.0), Some(50.0));
        assert_eq!(r.peak_gflops("bf16"), None);
    }
}
