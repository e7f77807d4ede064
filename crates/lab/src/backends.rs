//! The only backend dispatch: which backend runs, in which element type, is data (a [`BackendKind`] and a
//! [`Precision`]); [`dispatch`] turns it into a concrete `Backend<T>` and runs a generic [`Job`] on it.
//! `memorize` and `bench` go through here; the table of what each backend can run is [`check`].

use anyhow::{bail, Result};
use boltz_bigfloat::{BigFloatBackend, BigReal};
use boltz_core::{Backend, ReferenceBackend};
use boltz_cpu::CpuBackend;
use serde::{Deserialize, Serialize};

boltz_core::named_enum! {
/// A backend, as the command line, configs and Python name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind: "backend" {
    /// The scalar f64/f32 reference forward.
    Reference = "reference",
    /// The arbitrary-precision backend (p-bit arithmetic, correctly rounded).
    Bigfloat = "bigfloat",
    /// The multi-threaded pure-Rust CPU backend (f32/f64).
    Cpu = "cpu",
    /// The BLAS backend (ndarray + system OpenBLAS; f32/f64; needs the `blas` feature, on by default).
    Blas = "blas",
    /// The CUDA backend (cuBLAS + NVRTC kernels; f32/f64; device 0). Without a GPU: exit 2 with the reason.
    Cuda = "cuda",
}
}

/// An element type: a hardware format or `p` mantissa bits on the arbitrary-precision backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// IEEE binary32 (24 bits).
    F32,
    /// IEEE binary64 (53 bits).
    F64,
    /// `p` mantissa bits (bigfloat only).
    Bits(u64),
}

impl Precision {
    /// Mantissa bits, the leading one included (f32: 24, f64: 53).
    pub fn bits(self) -> u64 {
        match self {
            Self::F32 => 24,
            Self::F64 => 53,
            Self::Bits(b) => b,
        }
    }
}

/// The command-line spelling: `f32`, `f64`, `bits=N`.
impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::F32 => f.write_str("f32"),
            Self::F64 => f.write_str("f64"),
            Self::Bits(b) => write!(f, "bits={b}"),
        }
    }
}

impl Serialize for Precision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads the command-line spelling (`f32`, `f64`, `bits=N`).
impl<'de> Deserialize<'de> for Precision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    /// `f32`, `f64` or `bits=N` with 2 ≤ N ≤ [`boltz_bigfloat::MAX_BITS`].
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "f64" => Ok(Self::F64),
            _ => match s.strip_prefix("bits=").map(str::parse::<u64>) {
                Some(Ok(b)) if (2..=boltz_bigfloat::MAX_BITS).contains(&b) => Ok(Self::Bits(b)),
                _ => Err(format!("expected f32, f64 or bits=N (2 ≤ N ≤ {}), got {s:?}", boltz_bigfloat::MAX_BITS)),
            },
        }
    }
}

/// What each backend can run: refuses, before any work, a backend this build lacks or a precision the
/// backend cannot run. The one table; [`dispatch`] runs exactly what it accepts.
pub fn check(kind: BackendKind, precision: Precision) -> Result<()> {
    match (kind, precision) {
        #[cfg(not(feature = "blas"))]
        (BackendKind::Blas, _) => bail!("--backend blas is not in this build (built without the `blas` feature)"),
        #[cfg(not(feature = "cuda"))]
        (BackendKind::Cuda, _) => bail!("--backend cuda is not in this build (built without the `cuda` feature)"),
        // (Blas/Cuda are unreachable here in a build without them: the arms above took them.)
        #[allow(unreachable_patterns)]
        (BackendKind::Reference | BackendKind::Cpu | BackendKind::Blas | BackendKind::Cuda, Precision::Bits(_)) => {
            bail!("--backend {} runs f32 or f64 (got --precision {precision}); use --backend bigfloat for bits=N", kind.name())
        }
        _ => Ok(()),
    }
}

/// Starts the backend once to see that it can run here (a GPU and the CUDA libraries for cuda); the
/// others always can. Lets a command refuse `--backend cuda` before minutes of building.
pub fn probe(kind: BackendKind) -> Result<()> {
    match kind {
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => boltz_cuda::CudaBackend::new().map(|_| ()).map_err(Into::into),
        _ => Ok(()),
    }
}

/// A computation generic over the element type and the backend.
pub trait Job {
    /// What it returns.
    type Output;
    /// Runs on `backend` in element type `T`.
    fn run<T: boltz_core::Real, B: Backend<T>>(self, backend: &B) -> Result<Self::Output>;
}

/// Runs `job` on backend `kind` in `precision` with `threads` workers (ignored by the single-threaded
/// reference and by cuda). A backend that cannot start (no GPU, no CUDA libraries) is an error saying why.
pub fn dispatch<J: Job>(kind: BackendKind, precision: Precision, threads: usize, job: J) -> Result<J::Output> {
    check(kind, precision)?;
    match (kind, precision) {
        (BackendKind::Reference, Precision::F32) => job.run::<f32, _>(&ReferenceBackend),
        (BackendKind::Reference, Precision::F64) => job.run::<f64, _>(&ReferenceBackend),
        (BackendKind::Cpu, Precision::F32) => job.run::<f32, _>(&CpuBackend::new(threads)?),
        (BackendKind::Cpu, Precision::F64) => job.run::<f64, _>(&CpuBackend::new(threads)?),
        #[cfg(feature = "blas")]
        (BackendKind::Blas, Precision::F32) => job.run::<f32, _>(&boltz_blas::BlasBackend::new(threads)?),
        #[cfg(feature = "blas")]
        (BackendKind::Blas, Precision::F64) => job.run::<f64, _>(&boltz_blas::BlasBackend::new(threads)?),
        #[cfg(feature = "cuda")]
        (BackendKind::Cuda, Precision::F32) => job.run::<f32, _>(&boltz_cuda::CudaBackend::new()?),
        #[cfg(feature = "cuda")]
        (BackendKind::Cuda, Precision::F64) => job.run::<f64, _>(&boltz_cuda::CudaBackend::new()?),
        (BackendKind::Bigfloat, p) => job.run::<BigReal, _>(&BigFloatBackend::with_threads(p.bits(), threads)?),
        // `check` refused every other combination above.
        (other, p) => bail!("--backend {} cannot run {p}", other.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Name;
    impl Job for Name {
        type Output = (&'static str, &'static str);
        fn run<T: boltz_core::Real, B: Backend<T>>(self, backend: &B) -> Result<Self::Output> {
            Ok((backend.name(), T::DTYPE))
        }
    }

    #[test]
    fn precision_spellings_round_trip_and_bad_ones_are_refused() {
        for s in ["f32", "f64", "bits=2", "bits=390"] {
            assert_eq!(s.parse::<Precision>().map(|p| p.to_string()), Ok(s.to_string()));
        }
        for s in ["f16", "bits=1", "bits=0", "bits=", "BITS=24", "bits=-3", "bits=99999999999999999999", ""] {
            assert!(s.parse::<Precision>().is_err(), "{s}");
        }
    }

    #[test]
    fn backend_names_round_trip_and_unknown_ones_are_refused() {
        boltz_core::named::assert_serde_spells_like_names::<BackendKind>();
        let err = "gpu".parse::<BackendKind>().unwrap_err().to_string();
        assert!(err.contains("unknown backend \"gpu\"") && err.contains("reference, bigfloat, cpu, blas, cuda"), "{err}");
    }

    #[test]
    fn dispatch_runs_what_check_accepts_on_the_named_backend_and_type() {
        assert_eq!(dispatch(BackendKind::Reference, Precision::F32, 1, Name).unwrap(), ("reference", "f32"));
        assert_eq!(dispatch(BackendKind::Cpu, Precision::F64, 1, Name).unwrap(), ("cpu", "f64"));
        assert_eq!(dispatch(BackendKind::Bigfloat, Precision::Bits(80), 1, Name).unwrap().0, "bigfloat");
        for kind in [BackendKind::Reference, BackendKind::Cpu, BackendKind::Blas, BackendKind::Cuda] {
            let err = dispatch(kind, Precision::Bits(80), 1, Name).unwrap_err().to_string();
            let in_build = match kind {
                BackendKind::Blas => cfg!(feature = "blas"),
                BackendKind::Cuda => cfg!(feature = "cuda"),
                _ => true,
            };
            let expected = if in_build { "runs f32 or f64" } else { "is not in this build" };
            assert!(err.contains(expected), "{}: {err}", kind.name());
        }
    }

    /// A build without a backend's feature refuses it by name, whatever the precision.
    #[test]
    fn a_backend_left_out_of_the_build_is_refused_by_name() {
        for (kind, present) in [(BackendKind::Blas, cfg!(feature = "blas")), (BackendKind::Cuda, cfg!(feature = "cuda"))] {
            let got = check(kind, Precision::F64);
            if present {
                assert!(got.is_ok(), "{}: {got:?}", kind.name());
            } else {
                let err = got.unwrap_err().to_string();
                assert!(err.contains(&format!("--backend {} is not in this build", kind.name())), "{err}");
            }
        }
    }

    /// `--backend cuda` runs where a GPU is, and elsewhere is an error naming what is missing (never a
    /// panic, never a silent fallback to another backend).
    #[test]
    fn cuda_runs_or_says_why_not() {
        match dispatch(BackendKind::Cuda, Precision::F32, 1, Name) {
            Ok(got) => assert_eq!(got, ("cuda", "f32")),
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(msg.contains("cuda") && (msg.contains("lib") || msg.contains("device") || msg.contains("feature")), "{msg}");
            }
        }
    }
}
