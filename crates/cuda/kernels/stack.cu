// NVRTC kernels of the boltzformer CUDA backend (compiled once per process, embedded with include_str!).
// Row-major tensors; one sequence = n consecutive token rows. Templates are instantiated for float and
// double behind extern "C" names with an _f32 / _f64 suffix.

#define MAX_HEAD 64

// NVRTC compiles without the C headers: no INFINITY from math.h. +inf as a float bit pattern (it widens
// exactly to the double +inf).
#define BOLTZ_INF __int_as_float(0x7f800000)

template <typename T> __device__ __forceinline__ T dev_exp(T x);
template <> __device__ __forceinline__ float dev_exp<float>(float x) { return expf(x); }
template <> __device__ __forceinline__ double dev_exp<double>(double x) { return exp(x); }

// Fused attention for head sizes 1..MAX_HEAD: one thread per query row computes its scores against the
// keys of its own sequence, a max-shifted (online) softmax or the hardmax (exact ties averaged), and the
// weighted sum of values, in one pass; no n x n matrix is ever stored.
template <typename T>
__device__ void attend(const T* q, const T* k, const T* v, T* mixed, int rows, int n, int hs, int hardmax, int causal) {
    int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;
    int seq = row / n, j = row % n;
    int keys = causal ? j + 1 : n;
    const T* qj = q + (size_t)row * hs;
    const T* K = k + (size_t)seq * n * hs;
    const T* V = v + (size_t)seq * n * hs;
    T acc[MAX_HEAD];
    for (int c = 0; c < hs; c++) acc[c] = 0;
    T m = -BOLTZ_INF, total = 0;
    for (int i = 0; i < keys; i++) {
        T s = 0;
        for (int c = 0; c < hs; c++) s += K[i * hs + c] * qj[c];
        if (hardmax) {
            if (s > m) {
                m = s; total = 1;
                for (int c = 0; c < hs; c++) acc[c] = V[i * hs + c];
            } else if (s == m) {
                total += 1;
                for (int c = 0; c < hs; c++) acc[c] += V[i * hs + c];
            }
        } else if (s > m) {
            T scale = dev_exp<T>(m - s);  // 0 for the first key (m = -inf)
            total = total * scale + 1;
            for (int c = 0; c < hs; c++) acc[c] = acc[c] * scale + V[i * hs + c];
            m = s;
        } else {
            T w = dev_exp<T>(s - m);
            total += w;
            for (int c = 0; c < hs; c++) acc[c] += w * V[i * hs + c];
        }
    }
    for (int c = 0; c < hs; c++) mixed[(size_t)row * hs + c] = acc[c] / total;
}

// The same attention with one warp per query row, for head sizes 5..MAX_HEAD: lane c holds components c
// and c + 32 of the query, accumulator and value rows (coalesced loads), and a key's score is a warp sum
// broadcast from lane 0, so every lane sees the bit-identical score (hardmax ties stay exact). 32x the
// threads of `attend`, and no per-thread accumulator array.
template <typename T>
__device__ void attend_warp(const T* q, const T* k, const T* v, T* mixed, int rows, int n, int hs, int hardmax, int causal) {
    long row = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;  // a whole warp shares its row, so full-mask shuffles stay valid
    int seq = row / n, j = row % n;
    int keys = causal ? j + 1 : n;
    const T* K = k + (size_t)seq * n * hs;
    const T* V = v + (size_t)seq * n * hs;
    int c0 = lane, c1 = lane + 32;
    bool h0 = c0 < hs, h1 = c1 < hs;
    T q0 = h0 ? q[row * hs + c0] : (T)0, q1 = h1 ? q[row * hs + c1] : (T)0;
    T a0 = 0, a1 = 0, m = -BOLTZ_INF, total = 0;
    for (int i = 0; i < keys; i++) {
        const T* Ki = K + (size_t)i * hs;
        const T* Vi = V + (size_t)i * hs;
        T s = (h0 ? Ki[c0] * q0 : (T)0) + (h1 ? Ki[c1] * q1 : (T)0);
        for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
        s = __shfl_sync(0xffffffffu, s, 0);
        T v0 = h0 ? Vi[c0] : (T)0, v1 = h1 ? Vi[c1] : (T)0;
        if (hardmax) {
            if (s > m) {
                m = s; total = 1; a0 = v0; a1 = v1;
            } else if (s == m) {
                total += 1; a0 += v0; a1 += v1;
            }
        } else if (s > m) {
            T scale = dev_exp<T>(m - s);  // 0 for the first key (m = -inf)
            total = total * scale + 1;
            a0 = a0 * scale + v0;
            a1 = a1 * scale + v1;
            m = s;
        } else {
            T w = dev_exp<T>(s - m);
            total += w;
            a0 += w * v0;
            a1 += w * v1;
        }
    }
    if (h0) mixed[row * hs + c0] = a0 / total;
    if (h1) mixed[row * hs + c1] = a1 / total;
}

// h[r, c] = act(h[r, c] + b[c]) with act = ReLU when relu != 0.
template <typename T>
__device__ void bias_act(T* h, const T* b, long total, int width, int relu) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    T x = h[i] + b[i % width];
    h[i] = (relu && x < 0) ? (T)0 : x;
}

// z[r, c] += delta[r, c] (+ b[c] when has_bias): the residual epilogue.
template <typename T>
__device__ void residual(T* z, const T* delta, const T* b, long total, int d, int has_bias) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    z[i] += has_bias ? delta[i] + b[i % d] : delta[i];
}

#define INSTANTIATE(T, S)                                                                                            \
    extern "C" __global__ void attend_##S(const T* q, const T* k, const T* v, T* mixed, int rows, int n, int hs,     \
                                          int hardmax, int causal) {                                                 \
        attend<T>(q, k, v, mixed, rows, n, hs, hardmax, causal);                                                     \
    }                                                                                                                \
    extern "C" __global__ void attend_warp_##S(const T* q, const T* k, const T* v, T* mixed, int rows, int n,        \
                                               int hs, int hardmax, int causal) {                                    \
        attend_warp<T>(q, k, v, mixed, rows, n, hs, hardmax, causal);                                                \
    }                                                                                                                \
    extern "C" __global__ void bias_act_##S(T* h, const T* b, long total, int width, int relu) {                     \
        bias_act<T>(h, b, total, width, relu);                                                                       \
    }                                                                                                                \
    extern "C" __global__ void residual_##S(T* z, const T* delta, const T* b, long total, int d, int has_bias) {    \
        residual<T>(z, delta, b, total, d, has_bias);                                                                \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
