// Innermost numeric kernels of Microscale: quantized dot products, activation quantization, half-precision
// conversion. Each has a portable C path and an AVX2/FMA/F16C path chosen at run time from the CPU's features.
#ifndef MS_KERNELS_H
#define MS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Kernel paths, from the most portable up.
enum ms_level { MS_LEVEL_PORTABLE = 0, MS_LEVEL_AVX2 = 1, MS_LEVEL_AVX512_VNNI = 2 };

/// ggml tensor type ids the kernels take.
enum ms_type { MS_TYPE_F32 = 0, MS_TYPE_F16 = 1, MS_TYPE_Q4_0 = 2, MS_TYPE_Q4_1 = 3, MS_TYPE_Q8_0 = 8 };

/// The best path this CPU supports.
int ms_detect_level(void);
/// The path in use (defaults to the detected one).
int ms_level(void);
/// Forces a path (clamped to what the CPU supports); returns the path now in use.
int ms_set_level(int level);

/// Dot product of `blocks` Q4_1 weight blocks (20 bytes each) with Q8_1 activations
/// (values `q`, per-block scales `d` and scaled sums `s`).
float ms_dot_q4_1_q8_1(int blocks, const void *w, const int8_t *q, const float *d, const float *s);
/// Four dot products of one Q4_1 weight row with four Q8_1 activation rows (`stride` values apart, scales and
/// sums `blocks` apart), each bit-identical to `ms_dot_q4_1_q8_1`; the weight row is unpacked once for all four.
void ms_dot4_q4_1_q8_1(int blocks, const void *w, const int8_t *q, const float *d, const float *s, int stride, float *out);
/// Four dot products of one Q8_0 weight row with four Q8_0 activation rows, as `ms_dot4_q4_1_q8_1`.
void ms_dot4_q8_0_q8_0(int blocks, const void *w, const int8_t *q, const float *d, int stride, float *out);

/// `y[r] = dot(row r, activations)` (or `y[r] +=` with `accumulate`) for `nrows` rows of a Q4_1, Q4_0 or Q8_0 matrix
/// (`type` an `ms_type`, rows `row_bytes` apart) and one quantized activation row; each result bit-identical to the
/// single-row kernels'; the row loop runs inside the path's kernel.
void ms_gemv(int type, int nrows, int blocks, const void *w, int row_bytes, const int8_t *q, const float *d, const float *s,
             float *y, int accumulate);

/// Q4_0 weight blocks (18 bytes) with Q8_0 activations.
float ms_dot_q4_0_q8_0(int blocks, const void *w, const int8_t *q, const float *d);
/// Q8_0 weight blocks (34 bytes) with Q8_0 activations.
float ms_dot_q8_0_q8_0(int blocks, const void *w, const int8_t *q, const float *d);

/// Quantizes `blocks` blocks of 32 floats: `d = max|x|/127` rounded through half precision, `q = round(x/d)`
/// (to nearest even), and, when `s` is not NULL, `s = half(d * sum(q))`.
void ms_quantize_q8(int blocks, const float *x, int8_t *q, float *d, float *s);

/// Half-precision bits to floats.
void ms_half_to_float(int n, const uint16_t *h, float *f);
/// Floats to half-precision bits (round to nearest even).
void ms_float_to_half(int n, const float *f, uint16_t *h);

/// Float dot product.
float ms_dot_f32(int n, const float *a, const float *b);
/// Half-precision row times float row.
float ms_dot_f16_f32(int n, const uint16_t *a, const float *b);
/// `y += a * x` with half-precision `x`.
void ms_axpy_f16(int n, float a, const uint16_t *x, float *y);

/// `out = silu(gate) * up` with `silu(x) = x / (1 + e^-x)`, e^x by the polynomial llama.cpp's vector code uses
/// (ARM optimized-routines expf: range reduction by ln 2, degree-5 polynomial, 2^n scaling).
void ms_swiglu(int n, const float *gate, const float *up, float *out);

/// Dot product of two half-precision rows summed in llama.cpp's AVX-512 order (four accumulators of 16 lanes per
/// 64 elements, pairwise tree reduction), so attention scores match its flash-attention kernel bit for bit.
float ms_dot_f16_tree(int n, const uint16_t *a, const uint16_t *b);

/// Rotates `pairs` adjacent pairs `(x[2i], x[2i+1])` by angles with cosines `c[i]` and sines `s[i]`, rounding as
/// llama.cpp's build does (its compiler fuses the first product of each line into a multiply-add).
void ms_rope_pairs(int pairs, const float *c, const float *s, float *x);

/// `c[i][j] = bias[j] + Σ_p a[i][p] · w[j][p]` for `m` activation rows and `n` weight rows of length `k`
/// (row strides `lda`, `ldw`, `ldc`; `bias` may be NULL). Tiles of 4 activation rows by 2 weight rows.
void ms_gemm_f32(int m, int n, int k, const float *a, int lda, const float *w, int ldw, const float *bias, float *c, int ldc);

/// As `ms_gemm_f32`, with half-precision weights (half the memory traffic).
void ms_gemm_f16(int m, int n, int k, const float *a, int lda, const uint16_t *w, int ldw, const float *bias, float *c, int ldc);

/// `x = gelu(x)` in the exact (erf) form, `x/2 · (1 + erf(x/√2))`, with erf approximated to within 1.5e-7
/// (Abramowitz and Stegun 7.1.26), ten times faster than libm's erff.
void ms_gelu_erf(int n, float *x);

/// `x[r] = layernorm(x[r] + y[r]) · weight + bias` for `rows` rows of `d` (residual add fused in; statistics in double).
void ms_add_layer_norm(int rows, int d, float *x, const float *y, const float *weight, const float *bias, float eps);

/// Attention of one query head over `n` cached positions (keys and values as half-precision bits, position `p`
/// at `keys + p * stride`), with online softmax. With `half_accumulator`, the query is rounded to half precision and
/// the weighted sum of values is kept in half precision, rounding after every step, as llama.cpp's CPU flash
/// attention does for batches of fewer than 64 queries; otherwise everything stays in single precision (its tiled path).
void ms_attend(int n, int head_size, float scale, const float *q, const uint16_t *keys, const uint16_t *values,
               int stride, int half_accumulator, float *out);

/// A unit of parallel work: `chunk` of a job, with the caller's context.
typedef void (*ms_chunk_fn)(void *ctx, int chunk);

/// Runs `fn(ctx, 0..<chunks)` on the persistent pool (the calling thread works too) and returns when every chunk
/// is done. With `threads` ≤ 1, or while another job holds the pool, the caller runs all chunks itself.
void ms_parallel_for(int chunks, int threads, ms_chunk_fn fn, void *ctx);


/// A weight matrix in its stored (ggml) layout: `rows` output features of `cols` inputs, `row_bytes` apart.
typedef struct {
    int type;
    int rows;
    int cols;
    int row_bytes;
    const void *data;
} ms_matrix;

/// Most matrices one `ms_matmul` job takes.
#define MS_MATMUL_MAX 3
/// `ms_matmul` flags: add the products to `y` instead of storing them (a residual connection).
#define MS_MATMUL_ACCUMULATE 1
/// Two matrices of equal shape (gate and up): `y[0] = silu(x·W0ᵀ) · (x·W1ᵀ)`, with `y[1]` as scratch.
#define MS_MATMUL_SWIGLU 2

/// Bytes of scratch `ms_matmul` needs for `tokens` activation rows of `cols` inputs.
size_t ms_matmul_scratch(int tokens, int cols);

/// `y_i[t][r] = Σ_c W_i[r][c] · x[t][c]` for `count` matrices with the same `cols` sharing the input `x`
/// (`tokens × cols`), in one job on the pool: the activations are quantized once (Q8_1, for every quantized
/// matrix), rows are split into chunks across threads. `y_i` is `tokens × rows_i`. `scratch` holds at least
/// `ms_matmul_scratch(tokens, cols)` bytes.
void ms_matmul(int count, const ms_matrix *w, int tokens, const float *x, float *const *y, int flags, int threads,
               void *scratch);

/// Attention of `tokens` query rows (`heads × head_size` wide), each over the first `lengths[t]` positions of its
/// own cache (`keys[t]`, `values[t]`, rows `kv_heads × head_size` wide; several sequences can share a batch), one
/// `ms_attend` per token and head, spread over the pool.
void ms_attention(int tokens, int heads, int kv_heads, int head_size, const int *lengths, const uint16_t *const *keys,
                  const uint16_t *const *values, int half_accumulator, const float *q, float *out, int threads);

/// Causal attention of `tokens` query rows at positions `start...` of one sequence over its cache (`keys`, `values`
/// with rows `kv_heads × head_size` wide, the new rows already stored), in tiles with single-precision accumulation:
/// the path for long batches. Returns 0 (and does nothing) where no tiled kernel applies (the portable path, head
/// sizes not a multiple of 8 or over 256); the caller then uses `ms_attention`.
int ms_attention_tiled(int tokens, int start, int heads, int kv_heads, int head_size, const float *q,
                       const uint16_t *keys, const uint16_t *values, float *out, int threads);

/// `out[r] = x[r] / sqrt(mean(x[r]²) + eps) · weight`, squares summed in double (as ggml does).
void ms_rms_norm(int rows, int d, const float *x, const float *weight, float eps, float *out);

#ifdef __cplusplus
}
#endif

#endif
