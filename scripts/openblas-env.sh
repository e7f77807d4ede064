# Sourced by the project's scripts before cargo starts: chooses a safe OpenBLAS kernel.
#
# Debian's OpenBLAS 0.3.21 does not recognise some current CPUs and silently runs its SSE3 "Prescott"
# kernel, 4-5x below the machine's ceiling. OpenBLAS reads OPENBLAS_CORETYPE once, when it loads, so it
# must be in the environment before any program starts. Rules (the same as boltz_blas::openblas):
#   * never override a value that is already set (some machines set it on purpose, for correctness);
#   * AVX-512F -> SkylakeX, AVX2 -> Haswell, otherwise leave OpenBLAS's own detection alone;
#   * never under valgrind (it cannot decode AVX-512): the gate's runner clears the environment anyway.
if [ -z "${OPENBLAS_CORETYPE+set}" ] && [ -r /proc/cpuinfo ]; then
  _boltz_flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
  case " $_boltz_flags " in
    *" avx512f "*) export OPENBLAS_CORETYPE=SkylakeX BOLTZ_OPENBLAS_CHOSEN=1 ;;
    *" avx2 "*) export OPENBLAS_CORETYPE=Haswell BOLTZ_OPENBLAS_CHOSEN=1 ;;
  esac
  unset _boltz_flags
fi
