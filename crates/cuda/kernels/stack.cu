// NVRTC kernels of the boltzformer CUDA backend (compiled once per process, embedded with include_str!).
// Row-major tensors; one sequence = n consecutive token rows. Templates are instantiated for float and
// double behind extern "C" names with an _f32 / _f64 suffix.

#define MAX_HEAD 64

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
    T m = -INFINITY, total = 0;
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
    extern "C" __global__ void bias_act_##S(T* h, const T* b, long total, int width, int relu) {                     \
        bias_act<T>(h, b, total, width, relu);                                                                       \
    }                                                                                                                \
    extern "C" __global__ void residual_##S(T* z, const T* delta, const T* b, long total, int d, int has_bias) {    \
        residual<T>(z, delta, b, total, d, has_bias);                                                                \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
