//! # boltz-cuda
//!
//! The CUDA backend: cuBLAS GEMMs for every token-wise product (projections, FFN, output maps) and
//! NVRTC-compiled kernels (`kernels/stack.cu`, embedded and compiled once per process) for what cuBLAS
//! cannot do: a **fused attention kernel** for head sizes 1…[`MAX_HEAD`] (scores, online max-shifted
//! softmax or exact-tie hardmax, weighted sum, in one pass — no n×n matrix in global memory; a thread per
//! query row up to head size [`WARP_HEAD_MIN`], a warp per row above), and the bias + ReLU and residual
//! epilogues. Weights are uploaded once in [`Backend::prepare`].
//!
//! **No CUDA, no panic.** cudarc is built with `dynamic-loading` and the `cuda-13000` feature (the GPU
//! machines run driver 580 / CUDA 13; cudarc then looks for `libcuda.so.1`, `libnvrtc.so.13`,
//! `libcublas.so.13` among others), so this crate builds on machines without any CUDA. cudarc *panics*
//! when it first touches a missing library, so [`CudaBackend::new`] probes each library with
//! `is_culib_present()` first and returns [`Error::NoDevice`] naming what is missing; the conformance
//! tests then print `SKIPPED cuda: <reason>` unless `BOLTZ_REQUIRE_BACKEND=cuda`.
//!
//! Layout: the forward runs layer by layer over all `M = batch · n` tokens (the GPU wants wide
//! products); FFNs are tiled over [`TOKEN_CHUNK`] tokens × [`HIDDEN_CHUNK`] hidden units, so the
//! memorizer's width-nN layer never materialises an `M × nN` activation. Overflow is checked once, on
//! the output. Measured on an H200 (`results/backends/cuda-nvidia-h200/`): conformance passes in f32
//! and f64; not yet done: a graph-captured path for deep-narrow stacks (launch overhead dominates) and
//! pinned, reused host/device buffers (the practical workload's time is mostly transfers and allocation).

use std::sync::{Arc, OnceLock};

use boltz_core::backend::{check_input, check_output};
use boltz_core::{Attention, Backend, Batch, DeviceInfo, Error, Float, Model, Normalizer, Result, Stack, Weight};
use cudarc::cublas::{sys::cublasOperation_t, CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, CudaView, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};

/// Largest head size of the fused attention kernel.
pub const MAX_HEAD: usize = 64;
/// Head sizes up to this run the thread-per-row attention kernel; larger ones the warp-per-row kernel.
pub const WARP_HEAD_MIN: usize = 4;
/// Tokens per FFN tile.
pub const TOKEN_CHUNK: usize = 16_384;
/// Hidden units per FFN tile.
pub const HIDDEN_CHUNK: usize = 4096;

const KERNELS: &str = include_str!("../kernels/stack.cu");

fn no_device(reason: impl Into<String>) -> Error {
    Error::NoDevice { backend: "cuda", reason: reason.into() }
}

fn driver_err(op: &'static str) -> impl Fn(cudarc::driver::DriverError) -> Error {
    move |e| Error::Backend { backend: "cuda", op, message: e.to_string() }
}

fn blas_err(op: &'static str) -> impl Fn(cudarc::cublas::result::CublasError) -> Error {
    move |e| Error::Backend { backend: "cuda", op, message: e.to_string() }
}

/// Which CUDA libraries this machine can load (probed without touching cudarc's panicking loaders).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryProbe {
    /// `libcuda` (the driver).
    pub driver: bool,
    /// `libnvrtc` (run-time compilation of the kernels).
    pub nvrtc: bool,
    /// `libcublas`.
    pub cublas: bool,
}

/// Probes the three libraries the backend needs.
pub fn probe_libraries() -> LibraryProbe {
    // SAFETY: these only try to dlopen the library by its candidate names; they never panic.
    unsafe {
        LibraryProbe {
            driver: cudarc::driver::sys::is_culib_present(),
            nvrtc: cudarc::nvrtc::sys::is_culib_present(),
            cublas: cudarc::cublas::sys::is_culib_present(),
        }
    }
}

/// The kernels' PTX, compiled once per process.
fn ptx() -> Result<cudarc::nvrtc::Ptx> {
    static PTX: OnceLock<std::result::Result<cudarc::nvrtc::Ptx, String>> = OnceLock::new();
    PTX.get_or_init(|| cudarc::nvrtc::compile_ptx(KERNELS).map_err(|e| e.to_string())).clone().map_err(|message| Error::Backend {
        backend: "cuda",
        op: "nvrtc compile",
        message,
    })
}

/// Compiles the kernels with NVRTC, which needs no GPU: lets a machine with NVRTC but no device check
/// that `kernels/stack.cu` compiles. `NoDevice` when NVRTC itself is missing.
pub fn compile_kernels() -> Result<()> {
    if !probe_libraries().nvrtc {
        return Err(no_device("libnvrtc (CUDA 13) not found; set LD_LIBRARY_PATH to its folder"));
    }
    ptx().map(|_| ())
}

/// Element types with cuBLAS and kernel support: `f32`, `f64`.
pub trait CudaFloat: Float + DeviceRepr + ValidAsZeroBits + Unpin + Send + Sync {
    /// Kernel name suffix.
    const SUFFIX: &'static str;
    /// `C = op(A) op(B) + beta C` (column-major, cuBLAS).
    fn gemm(
        blas: &CudaBlas,
        cfg: GemmConfig<Self>,
        a: &CudaView<'_, Self>,
        b: &CudaView<'_, Self>,
        c: &mut CudaViewMut<'_, Self>,
    ) -> Result<()>;
}

macro_rules! impl_cuda_float {
    ($t:ty, $s:literal) => {
        impl CudaFloat for $t {
            const SUFFIX: &'static str = $s;
            fn gemm(
                blas: &CudaBlas,
                cfg: GemmConfig<Self>,
                a: &CudaView<'_, Self>,
                b: &CudaView<'_, Self>,
                c: &mut CudaViewMut<'_, Self>,
            ) -> Result<()> {
                // SAFETY: the callers size every operand for the m, n, k and leading dimensions they pass.
                unsafe { blas.gemm(cfg, a, b, c) }.map_err(blas_err("cublas gemm"))
            }
        }
    };
}
impl_cuda_float!(f32, "f32");
impl_cuda_float!(f64, "f64");

/// The CUDA backend (device 0).
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    /// Kernels by (name, element suffix): looked up without allocating, once per launch.
    functions: std::collections::HashMap<(&'static str, &'static str), CudaFunction>,
    device_name: String,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend").field("device", &self.device_name).finish()
    }
}

impl CudaBackend {
    /// Device 0, or [`Error::NoDevice`] saying which library or device is missing (never a panic).
    pub fn new() -> Result<Self> {
        let probe = probe_libraries();
        let missing: Vec<&str> =
            [(probe.driver, "libcuda (NVIDIA driver)"), (probe.nvrtc, "libnvrtc (CUDA 13 NVRTC)"), (probe.cublas, "libcublas (CUDA 13)")]
                .into_iter()
                .filter_map(|(ok, name)| (!ok).then_some(name))
                .collect();
        if !missing.is_empty() {
            return Err(no_device(format!("cannot load {} (looked for the names of cudarc's cuda-13000 feature)", missing.join(", "))));
        }
        let count = CudaContext::device_count().map_err(|e| no_device(format!("the driver reports no usable device: {e}")))?;
        if count < 1 {
            return Err(no_device("the driver reports 0 devices"));
        }
        let ctx = CudaContext::new(0).map_err(|e| no_device(format!("cannot open device 0: {e}")))?;
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(blas_err("cublas init"))?;
        let module = ctx.load_module(ptx()?).map_err(driver_err("load module"))?;
        let mut functions = std::collections::HashMap::new();
        for base in ["attend", "attend_warp", "bias_act", "residual"] {
            for suffix in ["f32", "f64"] {
                let name = format!("{base}_{suffix}");
                functions.insert((base, suffix), module.load_function(&name).map_err(driver_err("load function"))?);
            }
        }
        let device_name = ctx.name().unwrap_or_else(|_| "CUDA device 0".into());
        Ok(Self { ctx, stream, blas, functions, device_name })
    }

    fn function<T: CudaFloat>(&self, base: &'static str) -> Result<&CudaFunction> {
        self.functions.get(&(base, T::SUFFIX)).ok_or_else(|| Error::Backend {
            backend: "cuda",
            op: "kernel lookup",
            message: format!("no kernel {base}_{}", T::SUFFIX),
        })
    }

    /// `h[r, c] = act(h[r, c] + bias[c])` over the first `rows · width` elements (act = ReLU when `relu`).
    fn bias_act<T: CudaFloat>(&self, h: &mut CudaSlice<T>, bias: &CudaView<'_, T>, rows: usize, width: usize, relu: bool) -> Result<()> {
        let f = self.function::<T>("bias_act")?;
        let (total, w, relu) = (i64::try_from(rows * width).unwrap_or(i64::MAX), int(width)?, i32::from(relu));
        // SAFETY: h holds at least rows·width elements and bias `width`, which is all the kernel reads.
        unsafe { self.stream.launch_builder(f).arg(h).arg(bias).arg(&total).arg(&w).arg(&relu).launch(launch_1d(rows * width)) }
            .map_err(driver_err("bias kernel"))?;
        Ok(())
    }

    /// The residual epilogue `z += delta (+ bias per column)` over `rows × d` elements.
    fn residual<T: CudaFloat>(
        &self,
        z: &mut CudaSlice<T>,
        delta: &CudaSlice<T>,
        bias: Option<&CudaSlice<T>>,
        rows: usize,
        d: usize,
    ) -> Result<()> {
        let f = self.function::<T>("residual")?;
        let (total, d_i, has_bias) = (i64::try_from(rows * d).unwrap_or(i64::MAX), int(d)?, i32::from(bias.is_some()));
        // Without a bias the kernel never reads its pointer; pass `delta` as a valid placeholder.
        let b = bias.unwrap_or(delta);
        // SAFETY: z and delta hold rows·d elements, a bias holds d.
        unsafe { self.stream.launch_builder(f).arg(z).arg(delta).arg(b).arg(&total).arg(&d_i).arg(&has_bias).launch(launch_1d(rows * d)) }
            .map_err(driver_err("residual kernel"))?;
        Ok(())
    }

    fn upload<T: CudaFloat>(&self, host: &[T]) -> Result<CudaSlice<T>> {
        self.stream.clone_htod(host).map_err(driver_err("upload"))
    }

    fn zeros<T: CudaFloat>(&self, len: usize) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros(len.max(1)).map_err(driver_err("alloc"))
    }
}

/// A weight on the device (row-major, as in `boltz_core`).
enum Linear<T> {
    Dense { rows: usize, cols: usize, w: CudaSlice<T> },
    Factored { rows: usize, r: usize, u: CudaSlice<T>, v: CudaSlice<T> },
}

fn int(x: usize) -> Result<i32> {
    i32::try_from(x).map_err(|_| Error::InvalidParameter { name: "shape".into(), reason: format!("{x} exceeds cuBLAS's 32-bit sizes") })
}

impl<T: CudaFloat> Linear<T> {
    fn new(be: &CudaBackend, w: &Weight<T>) -> Result<Self> {
        Ok(match w {
            Weight::Dense(m) => Self::Dense { rows: m.rows(), cols: m.cols(), w: be.upload(m.as_slice())? },
            Weight::Factored { u, v } => {
                Self::Factored { rows: u.rows(), r: u.cols(), u: be.upload(u.as_slice())?, v: be.upload(v.as_slice())? }
            }
        })
    }

    fn rows(&self) -> usize {
        match self {
            Self::Dense { rows, .. } | Self::Factored { rows, .. } => *rows,
        }
    }

    /// `out[m × rows.len()] (ld = ldo) = x[m × cols.len()] (contiguous) · W[rows, cols]ᵀ + beta · out`.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        be: &CudaBackend,
        m: usize,
        x: &CudaView<'_, T>,
        out: &mut CudaViewMut<'_, T>,
        ldo: usize,
        beta: T,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        tmp: &mut CudaSlice<T>,
    ) -> Result<()> {
        let (one, zero) = (T::from_f64(1.0), T::default());
        let k = cols.len();
        let (t, n) = (cublasOperation_t::CUBLAS_OP_T, cublasOperation_t::CUBLAS_OP_N);
        match self {
            Self::Dense { cols: stride, w, .. } => {
                let a = w.slice(rows.start * stride + cols.start..);
                let cfg = GemmConfig {
                    transa: t,
                    transb: n,
                    m: int(rows.len())?,
                    n: int(m)?,
                    k: int(k)?,
                    alpha: one,
                    lda: int(*stride)?,
                    ldb: int(k)?,
                    beta,
                    ldc: int(ldo)?,
                };
                T::gemm(&be.blas, cfg, &a, x, out)
            }
            Self::Factored { r, u, v, .. } => {
                if tmp.len() < m * r {
                    *tmp = be.zeros(m * r)?;
                }
                let va = v.slice(cols.start * r..);
                let cfg = GemmConfig {
                    transa: n,
                    transb: n,
                    m: int(*r)?,
                    n: int(m)?,
                    k: int(k)?,
                    alpha: one,
                    lda: int(*r)?,
                    ldb: int(k)?,
                    beta: zero,
                    ldc: int(*r)?,
                };
                T::gemm(&be.blas, cfg, &va, x, &mut tmp.slice_mut(..m * r))?;
                let ua = u.slice(rows.start * r..);
                let cfg = GemmConfig {
                    transa: t,
                    transb: n,
                    m: int(rows.len())?,
                    n: int(m)?,
                    k: int(*r)?,
                    alpha: one,
                    lda: int(*r)?,
                    ldb: int(*r)?,
                    beta,
                    ldc: int(ldo)?,
                };
                T::gemm(&be.blas, cfg, &ua, &tmp.slice(..m * r), out)
            }
        }
    }
}

struct Head<T> {
    w_q: Linear<T>,
    w_k: Linear<T>,
    w_v: Linear<T>,
    w_o: Linear<T>,
    b_q: Option<CudaSlice<T>>,
}

struct Ffn<T> {
    w1: Linear<T>,
    b1: CudaSlice<T>,
    w2: Linear<T>,
    b2: CudaSlice<T>,
}

/// A model uploaded to the device: the model's [`Stack`] skeleton over device heads and feed-forward
/// layers.
pub struct CudaModel<T> {
    stack: Stack<Head<T>, Ffn<T>>,
}

fn launch_1d(total: usize) -> LaunchConfig {
    LaunchConfig::for_num_elems(u32::try_from(total.max(1)).unwrap_or(u32::MAX))
}

impl<T: CudaFloat> Backend<T> for CudaBackend {
    type Prepared = CudaModel<T>;

    fn name(&self) -> &'static str {
        "cuda"
    }

    fn device_info(&self) -> DeviceInfo {
        let mut details = std::collections::BTreeMap::new();
        details.insert("dtype".into(), T::DTYPE.into());
        details.insert("cudarc_feature".into(), "cuda-13000".into());
        details.insert("ordinal".into(), self.ctx.ordinal().to_string());
        DeviceInfo { backend: "cuda".into(), device: self.device_name.clone(), threads: 1, details }
    }

    fn prepare(&self, model: &Model<T>) -> Result<CudaModel<T>> {
        let stack = model.stack().try_map(
            |site, h| {
                if h.head_size() > MAX_HEAD {
                    return Err(Error::InvalidParameter {
                        name: site.to_string(),
                        reason: format!("head size {} exceeds the fused kernel's maximum {MAX_HEAD}", h.head_size()),
                    });
                }
                Ok(Head {
                    w_q: Linear::new(self, &h.w_q)?,
                    w_k: Linear::new(self, &h.w_k)?,
                    w_v: Linear::new(self, &h.w_v)?,
                    w_o: Linear::new(self, &h.w_o)?,
                    b_q: h.b_q.as_deref().map(|b| self.upload(b)).transpose()?,
                })
            },
            |_, f| {
                Ok(Ffn { w1: Linear::new(self, &f.w1)?, b1: self.upload(&f.b1)?, w2: Linear::new(self, &f.w2)?, b2: self.upload(&f.b2)? })
            },
        )?;
        Ok(CudaModel { stack })
    }

    fn forward(&self, model: &CudaModel<T>, input: &Batch<T>) -> Result<Batch<T>> {
        check_input(model.stack.dim(), input)?;
        let (batch, n, d) = (input.batch(), input.len(), input.dim());
        let m = batch * n;
        let (zero, one) = (T::default(), T::from_f64(1.0));
        let mut z = self.upload(input.as_slice())?;
        let mut delta = self.zeros::<T>(m * d)?;
        let mut tmp = self.zeros::<T>(1)?;
        let (attend, attend_warp) = (self.function::<T>("attend")?, self.function::<T>("attend_warp")?);
        let (m_i, n_i) = (int(m)?, int(n)?);
        // One set of head buffers for the whole forward, sized for the widest head (a deep stack of small
        // heads would otherwise allocate and free four buffers per head per block).
        let widest = model.stack.heads().map(|(_, h)| h.w_q.rows()).max();
        let head_len = m * widest.unwrap_or(0);
        let (mut q, mut k, mut v, mut mixed) =
            (self.zeros::<T>(head_len)?, self.zeros::<T>(head_len)?, self.zeros::<T>(head_len)?, self.zeros::<T>(head_len)?);
        for block in model.stack.blocks() {
            if let Some(Attention { heads, normalizer, causal }) = &block.attention {
                self.stream.memset_zeros(&mut delta).map_err(driver_err("memset"))?;
                for head in heads {
                    let hs = head.w_q.rows();
                    let zv = z.slice(..);
                    head.w_q.apply(self, m, &zv, &mut q.slice_mut(..), hs, zero, 0..hs, 0..d, &mut tmp)?;
                    head.w_k.apply(self, m, &zv, &mut k.slice_mut(..), hs, zero, 0..hs, 0..d, &mut tmp)?;
                    head.w_v.apply(self, m, &zv, &mut v.slice_mut(..), hs, zero, 0..hs, 0..d, &mut tmp)?;
                    if let Some(bq) = &head.b_q {
                        self.bias_act(&mut q, &bq.slice(..), m, hs, false)?;
                    }
                    let (hs_i, hard, caus) = (int(hs)?, i32::from(*normalizer == Normalizer::Hardmax), i32::from(*causal));
                    // Tiny heads (Yun's size-1 hardmax heads): a thread per query row; wider heads: a warp
                    // per row (lanes split the head), 32× the parallelism and coalesced key/value loads.
                    let (kernel, threads_per_row) = if hs <= WARP_HEAD_MIN { (attend, 1) } else { (attend_warp, 32) };
                    let launch = LaunchConfig {
                        grid_dim: (u32::try_from((m * threads_per_row).div_ceil(128)).unwrap_or(u32::MAX), 1, 1),
                        block_dim: (128, 1, 1),
                        shared_mem_bytes: 0,
                    };
                    // SAFETY: q, k, v and mixed hold m·hs elements; the kernel reads keys of its own sequence only.
                    unsafe {
                        self.stream
                            .launch_builder(kernel)
                            .arg(&q)
                            .arg(&k)
                            .arg(&v)
                            .arg(&mut mixed)
                            .arg(&m_i)
                            .arg(&n_i)
                            .arg(&hs_i)
                            .arg(&hard)
                            .arg(&caus)
                            .launch(launch)
                    }
                    .map_err(driver_err("attention kernel"))?;
                    head.w_o.apply(self, m, &mixed.slice(..), &mut delta.slice_mut(..), d, one, 0..d, 0..hs, &mut tmp)?;
                }
                self.residual(&mut z, &delta, None, m, d)?;
            }
            if let Some(f) = &block.ffn {
                self.stream.memset_zeros(&mut delta).map_err(driver_err("memset"))?;
                let q = f.w1.rows();
                let width = q.min(HIDDEN_CHUNK);
                let mut hidden = self.zeros::<T>(TOKEN_CHUNK.min(m) * width)?;
                for t0 in (0..m).step_by(TOKEN_CHUNK) {
                    let t1 = (t0 + TOKEN_CHUNK).min(m);
                    let rows = t1 - t0;
                    for h0 in (0..q).step_by(HIDDEN_CHUNK) {
                        let h1 = (h0 + HIDDEN_CHUNK).min(q);
                        let w = h1 - h0;
                        let zv = z.slice(t0 * d..t1 * d);
                        f.w1.apply(self, rows, &zv, &mut hidden.slice_mut(..rows * w), w, zero, h0..h1, 0..d, &mut tmp)?;
                        self.bias_act(&mut hidden, &f.b1.slice(h0..h1), rows, w, true)?;
                        f.w2.apply(
                            self,
                            rows,
                            &hidden.slice(..rows * w),
                            &mut delta.slice_mut(t0 * d..t1 * d),
                            d,
                            one,
                            0..d,
                            h0..h1,
                            &mut tmp,
                        )?;
                    }
                }
                self.residual(&mut z, &delta, Some(&f.b2), m, d)?;
            }
        }
        let out: Vec<T> = self.stream.clone_dtoh(&z).map_err(driver_err("download"))?;
        check_output(&out, || "the output of the stack (cuda checks once, after the last block)".into())?;
        Batch::new(batch, n, d, out)
    }
}
