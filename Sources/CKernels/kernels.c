#ifndef ROPE0
#define ROPE0 fmaf(x0, c[i], -(x1 * s[i]))
#define ROPE1 fmaf(x0, s[i], x1 * c[i])
#endif
#include "ms_kernels.h"

#include <math.h>
#include <string.h>

#include "simd.h"

// ---------------------------------------------------------------------------------------------------------------
// Half precision, portable (bit manipulation; subnormals, infinities and NaN handled).

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            // Subnormal: normalise the mantissa.
            int e = -1;
            do { e++; man <<= 1; } while ((man & 0x400) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 0x1F) {
        bits = sign | 0x7F800000 | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7FFFFFFF;
    if (absx >= 0x7F800000) {  // inf or NaN
        return (uint16_t)(sign | 0x7C00 | (absx > 0x7F800000 ? 0x200 : 0));
    }
    if (absx >= 0x477FF000) {  // rounds to infinity
        return (uint16_t)(sign | 0x7C00);
    }
    if (absx < 0x38800000) {  // subnormal half or zero
        if (absx < 0x33000000) return (uint16_t)sign;
        uint32_t man = (absx & 0x7FFFFF) | 0x800000;
        int shift = 126 - (int)(absx >> 23);  // 14..24
        uint32_t half = man >> (shift);
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((absx >> 13) - ((127 - 15) << 10));
    uint32_t rem = absx & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

// ---------------------------------------------------------------------------------------------------------------
// Portable kernels.

// The portable kernels reproduce the AVX2 kernels' arithmetic exactly (eight float lanes, fused multiply-adds,
// the same reduction tree), so both paths give bit-identical results.

/// Horizontal sum of eight lanes in the AVX2 order: (i, i+4), then (0, 2) and (1, 3), then the last pair.
static inline float hsum8(const float *acc) {
    float t[4];
    for (int i = 0; i < 4; i++) t[i] = acc[i] + acc[i + 4];
    return (t[0] + t[2]) + (t[1] + t[3]);
}

/// One block's integer products as eight lanes of four adjacent products (what maddubs + madd produce).
static inline void lanes_i8(const int8_t *x, const int8_t *y, float *lanes) {
    for (int k = 0; k < 8; k++) {
        int sum = 0;
        for (int j = 4 * k; j < 4 * k + 4; j++) sum += x[j] * y[j];
        lanes[k] = (float)sum;
    }
}

static float dot_q4_1_q8_1_portable(int blocks, const void *w, const int8_t *q, const float *d, const float *s) {
    const uint8_t *x = (const uint8_t *)w;
    float acc[8] = {0}, lanes[8], summs = 0;
    int8_t nib[32];
    for (int b = 0; b < blocks; b++, x += 20) {
        summs = fmaf(half_to_float(load_u16(x + 2)), s[b], summs);
        for (int j = 0; j < 16; j++) { nib[j] = (int8_t)(x[4 + j] & 0x0F); nib[j + 16] = (int8_t)(x[4 + j] >> 4); }
        lanes_i8(nib, q + b * 32, lanes);
        const float scale = half_to_float(load_u16(x)) * d[b];
        for (int k = 0; k < 8; k++) acc[k] = fmaf(scale, lanes[k], acc[k]);
    }
    return hsum8(acc) + summs;
}

static float dot_q4_0_q8_0_portable(int blocks, const void *w, const int8_t *q, const float *d) {
    const uint8_t *x = (const uint8_t *)w;
    float acc[8] = {0}, lanes[8];
    int8_t nib[32];
    for (int b = 0; b < blocks; b++, x += 18) {
        for (int j = 0; j < 16; j++) { nib[j] = (int8_t)((x[2 + j] & 0x0F) - 8); nib[j + 16] = (int8_t)((x[2 + j] >> 4) - 8); }
        lanes_i8(nib, q + b * 32, lanes);
        const float scale = half_to_float(load_u16(x)) * d[b];
        for (int k = 0; k < 8; k++) acc[k] = fmaf(scale, lanes[k], acc[k]);
    }
    return hsum8(acc);
}

static float dot_q8_0_q8_0_portable(int blocks, const void *w, const int8_t *q, const float *d) {
    const uint8_t *x = (const uint8_t *)w;
    float acc[8] = {0}, lanes[8];
    for (int b = 0; b < blocks; b++, x += 34) {
        lanes_i8((const int8_t *)(x + 2), q + b * 32, lanes);
        const float scale = half_to_float(load_u16(x)) * d[b];
        for (int k = 0; k < 8; k++) acc[k] = fmaf(scale, lanes[k], acc[k]);
    }
    return hsum8(acc);
}

static void quantize_q8_portable(int blocks, const float *x, int8_t *q, float *d, float *s) {
    for (int b = 0; b < blocks; b++) {
        const float *src = x + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(src[j]));
        const float scale = amax / 127.0f;
        const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int v = (int)nearbyintf(src[j] * inv);
            q[b * 32 + j] = (int8_t)v;
            sum += v;
        }
        d[b] = half_to_float(float_to_half(scale));
        if (s) s[b] = half_to_float(float_to_half(scale * (float)sum));
    }
}

static void half_to_float_portable(int n, const uint16_t *h, float *f) {
    for (int i = 0; i < n; i++) f[i] = half_to_float(h[i]);
}

static void float_to_half_portable(int n, const float *f, uint16_t *h) {
    for (int i = 0; i < n; i++) h[i] = float_to_half(f[i]);
}

static float dot_f32_portable(int n, const float *a, const float *b) {
    float acc0[8] = {0}, acc1[8] = {0}, both[8];
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int k = 0; k < 8; k++) {
            acc0[k] = fmaf(a[i + k], b[i + k], acc0[k]);
            acc1[k] = fmaf(a[i + 8 + k], b[i + 8 + k], acc1[k]);
        }
    }
    for (int k = 0; k < 8; k++) both[k] = acc0[k] + acc1[k];
    float sum = hsum8(both);
    for (; i < n; i++) sum = fmaf(a[i], b[i], sum);
    return sum;
}

static float dot_f16_f32_portable(int n, const uint16_t *a, const float *b) {
    float acc0[8] = {0}, acc1[8] = {0}, both[8];
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int k = 0; k < 8; k++) {
            acc0[k] = fmaf(half_to_float(a[i + k]), b[i + k], acc0[k]);
            acc1[k] = fmaf(half_to_float(a[i + 8 + k]), b[i + 8 + k], acc1[k]);
        }
    }
    for (int k = 0; k < 8; k++) both[k] = acc0[k] + acc1[k];
    float sum = hsum8(both);
    for (; i < n; i++) sum = fmaf(half_to_float(a[i]), b[i], sum);
    return sum;
}

static void axpy_f16_portable(int n, float a, const uint16_t *x, float *y) {
    for (int i = 0; i < n; i++) y[i] = fmaf(a, half_to_float(x[i]), y[i]);
}

static void gemm_f32_portable(int m, int n, int k, const float *a, int lda, const float *w, int ldw, const float *bias,
                              float *c, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[(size_t)i * ldc + j] = (bias ? bias[j] : 0.0f) + dot_f32_portable(k, a + (size_t)i * lda, w + (size_t)j * ldw);
}

static void gemm_f16_portable(int m, int n, int k, const float *a, int lda, const uint16_t *w, int ldw, const float *bias,
                              float *c, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[(size_t)i * ldc + j] = (bias ? bias[j] : 0.0f) + dot_f16_f32_portable(k, w + (size_t)j * ldw, a + (size_t)i * lda);
}

// ---------------------------------------------------------------------------------------------------------------
// AVX2 + FMA + F16C kernels.

#ifdef MS_X86

MS_AVX2 static inline float h2f(const uint8_t *p) { return _cvtsh_ss(load_u16(p)); }

/// 16 packed bytes to 32 nibbles: low nibbles in lanes 0-15, high nibbles in lanes 16-31.
MS_AVX2 static inline __m256i nibbles(const uint8_t *p) {
    __m128i tmp = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(tmp, 4), tmp);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/// 32 lanes of unsigned bytes times signed bytes, summed in fours: maddubs (pairs to int16, no saturation for these
/// operands: nibbles or absolute values up to 128 times values of at most 127 in magnitude) then madd with ones.
MS_AVX2 static inline __m256i maddubs_sum(__m256i u, __m256i v) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, v), _mm256_set1_epi16(1));
}

/// Sum of products of two signed byte vectors (sign moved onto the second operand for maddubs), as floats.
MS_AVX2 static inline __m256 mul_sum_i8(__m256i x, __m256i y) {
    return _mm256_cvtepi32_ps(maddubs_sum(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)));
}

#define KATTR MS_AVX2
#define KNAME(name) name##_avx2
#define MULSUM maddubs_sum
#include "rows.inc"
#undef KATTR
#undef KNAME
#undef MULSUM

/// The same four-products sums in one AVX-512 VNNI instruction (256-bit form).
MS_VNNI static inline __m256i dpbusd_sum(__m256i u, __m256i v) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, v);
}

#define KATTR MS_VNNI
#define KNAME(name) name##_vnni
#define MULSUM dpbusd_sum
#include "rows.inc"
#undef KATTR
#undef KNAME
#undef MULSUM

MS_AVX2 static float dot_q4_0_q8_0_avx2(int blocks, const void *w, const int8_t *q, const float *d) {
    const uint8_t *x = (const uint8_t *)w;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < blocks; b++, x += 18) {
        __m256i qx = _mm256_sub_epi8(nibbles(x + 2), _mm256_set1_epi8(8));
        __m256i qy = _mm256_loadu_si256((const __m256i *)(q + b * 32));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * d[b]), mul_sum_i8(qx, qy), acc);
    }
    return hsum256(acc);
}

MS_AVX2 static void quantize_q8_avx2(int blocks, const float *x, int8_t *q, float *d, float *s) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < blocks; b++) {
        const float *src = x + b * 32;
        __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8);
        __m256 v2 = _mm256_loadu_ps(src + 16), v3 = _mm256_loadu_ps(src + 24);
        __m256 m = _mm256_andnot_ps(signbit, v0);
        m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, v1));
        m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, v2));
        m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, v3));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float scale = amax / 127.0f;
        const __m256 mul = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        d[b] = _cvtsh_ss(_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT));
        if (s) {
            __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
            s[b] = _cvtsh_ss(_cvtss_sh(scale * (float)_mm_cvtsi128_si32(s4), _MM_FROUND_TO_NEAREST_INT));
        }
        // Pack 32-bit lanes to bytes, then undo the lane interleaving of the packs.
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + b * 32), i0);
    }
}

MS_AVX2 static void half_to_float_avx2(int n, const uint16_t *h, float *f) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) f[i] = _cvtsh_ss(h[i]);
}

MS_AVX2 static void float_to_half_avx2(int n, const float *f, uint16_t *h) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = _cvtss_sh(f[i], _MM_FROUND_TO_NEAREST_INT);
}

MS_AVX2 static float dot_f32_avx2(int n, const float *a, const float *b) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    float sum = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum = fmaf(a[i], b[i], sum);
    return sum;
}

MS_AVX2 static float dot_f16_f32_avx2(int n, const uint16_t *a, const float *b) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i + 8))), _mm256_loadu_ps(b + i + 8), acc1);
    }
    float sum = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum = fmaf(_cvtsh_ss(a[i]), b[i], sum);
    return sum;
}

MS_AVX2 static void axpy_f16_avx2(int n, float a, const uint16_t *x, float *y) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, vx, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] = fmaf(a, _cvtsh_ss(x[i]), y[i]);
}

/// Matrix-product kernels for float and half-precision weights. Activation rows go in blocks of 64 (which stay in
/// L2); within a block, weight rows in pairs on the outside (each pair read once per block), activation rows in
/// fours inside, eight accumulators per tile. A last tile of fewer than four rows repeats its last row and keeps
/// only the real results.
#define MS_GEMM_KERNEL(NAME, WT, LOAD8, DOT)                                                                       \
MS_AVX2 static void NAME(int m, int n, int k, const float *a, int lda, const WT *w, int ldw, const float *bias,    \
                         float *c, int ldc) {                                                                       \
    const int k8 = k & ~7;                                                                                          \
    for (int ib = 0; ib < m; ib += 64) {                                                                            \
        const int ie = ib + 64 < m ? ib + 64 : m;                                                                   \
        int j = 0;                                                                                                  \
        for (; j + 2 <= n; j += 2) {                                                                                \
            const WT *w0 = w + (size_t)j * ldw, *w1 = w0 + ldw;                                                     \
            const float b0 = bias ? bias[j] : 0.0f, b1 = bias ? bias[j + 1] : 0.0f;                                 \
            for (int i = ib; i < ie; i += 4) {                                                                      \
                const int rows = ie - i < 4 ? ie - i : 4;                                                           \
                const float *a0 = a + (size_t)i * lda;                                                              \
                const float *a1 = rows > 1 ? a0 + lda : a0, *a2 = rows > 2 ? a1 + lda : a1;                         \
                const float *a3 = rows > 3 ? a2 + lda : a2;                                                         \
                __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,            \
                       c30 = c00, c31 = c00;                                                                        \
                for (int p = 0; p < k8; p += 8) {                                                                   \
                    const __m256 x0 = LOAD8(w0 + p), x1 = LOAD8(w1 + p);                                            \
                    __m256 y = _mm256_loadu_ps(a0 + p);                                                             \
                    c00 = _mm256_fmadd_ps(y, x0, c00); c01 = _mm256_fmadd_ps(y, x1, c01);                           \
                    y = _mm256_loadu_ps(a1 + p);                                                                    \
                    c10 = _mm256_fmadd_ps(y, x0, c10); c11 = _mm256_fmadd_ps(y, x1, c11);                           \
                    y = _mm256_loadu_ps(a2 + p);                                                                    \
                    c20 = _mm256_fmadd_ps(y, x0, c20); c21 = _mm256_fmadd_ps(y, x1, c21);                           \
                    y = _mm256_loadu_ps(a3 + p);                                                                    \
                    c30 = _mm256_fmadd_ps(y, x0, c30); c31 = _mm256_fmadd_ps(y, x1, c31);                           \
                }                                                                                                   \
                float r[8] = {hsum256(c00), hsum256(c01), hsum256(c10), hsum256(c11),                               \
                              hsum256(c20), hsum256(c21), hsum256(c30), hsum256(c31)};                              \
                if (k8 < k) {                                                                                       \
                    r[0] += DOT(k - k8, w0 + k8, a0 + k8); r[1] += DOT(k - k8, w1 + k8, a0 + k8);                   \
                    r[2] += DOT(k - k8, w0 + k8, a1 + k8); r[3] += DOT(k - k8, w1 + k8, a1 + k8);                   \
                    r[4] += DOT(k - k8, w0 + k8, a2 + k8); r[5] += DOT(k - k8, w1 + k8, a2 + k8);                   \
                    r[6] += DOT(k - k8, w0 + k8, a3 + k8); r[7] += DOT(k - k8, w1 + k8, a3 + k8);                   \
                }                                                                                                   \
                for (int t = 0; t < rows; t++) {                                                                    \
                    c[(size_t)(i + t) * ldc + j] = b0 + r[2 * t];                                                   \
                    c[(size_t)(i + t) * ldc + j + 1] = b1 + r[2 * t + 1];                                           \
                }                                                                                                   \
            }                                                                                                       \
        }                                                                                                           \
        for (; j < n; j++)                                                                                          \
            for (int i = ib; i < ie; i++)                                                                           \
                c[(size_t)i * ldc + j] = (bias ? bias[j] : 0.0f) + DOT(k, w + (size_t)j * ldw, a + (size_t)i * lda); \
    }                                                                                                               \
}

#define MS_LOAD_F32(p) _mm256_loadu_ps(p)
#define MS_LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define MS_DOT_F32(n, w, x) dot_f32_avx2((n), (w), (x))
#define MS_DOT_F16(n, w, x) dot_f16_f32_avx2((n), (w), (x))
MS_GEMM_KERNEL(gemm_f32_avx2, float, MS_LOAD_F32, MS_DOT_F32)
MS_GEMM_KERNEL(gemm_f16_avx2, uint16_t, MS_LOAD_F16, MS_DOT_F16)
#endif

// ---------------------------------------------------------------------------------------------------------------
// Activation and reduction orders that follow llama.cpp's, for parity.

static inline float expf_poly(float x) {
    const float shift = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, shift);
    const float n = z - shift;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (fabsf(n) > 192) return n <= 0 ? 0.0f : INFINITY;
    return ldexpf(j, (int)n);
}

static void swiglu_portable(int n, const float *gate, const float *up, float *out) {
    for (int i = 0; i < n; i++) {
        const float x = gate[i];
        out[i] = (x / (1.0f + expf_poly(0.0f - x))) * up[i];
    }
}

#ifdef MS_X86
/// `swiglu_portable` eight lanes at a time with the same operations in the same order. `ldexpf(j, n)` becomes two
/// exact power-of-two scalings, `(j · 2^⌊n/2⌋) · 2^(n−⌊n/2⌋)`: the first stays normal for |n| ≤ 192, so the only
/// rounding is the last one, as in `ldexpf`.
MS_AVX2 static void swiglu_avx2(int n, const float *gate, const float *up, float *out) {
    const __m256 shift = _mm256_set1_ps(0x1.8p23f), one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 x = _mm256_sub_ps(_mm256_setzero_ps(), g);
        const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), shift);
        const __m256 nf = _mm256_sub_ps(z, shift);
        const __m256 b = _mm256_fnmadd_ps(nf, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(nf, _mm256_set1_ps(0x1.62e4p-1f), x));
        const __m256 u = _mm256_mul_ps(b, b);
        const __m256 j = _mm256_fmadd_ps(
            _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                            _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
            u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, one));
        const __m256i ni = _mm256_cvttps_epi32(nf);  // nf is a whole number
        const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
        const __m256 p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
        const __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
        __m256 e = _mm256_mul_ps(_mm256_mul_ps(j, p1), p2);
        const __m256 big = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), nf), _mm256_set1_ps(192.0f), _CMP_GT_OQ);
        const __m256 limit = _mm256_and_ps(_mm256_cmp_ps(nf, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(INFINITY));
        e = _mm256_blendv_ps(e, limit, big);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    swiglu_portable(n - i, gate + i, up + i, out + i);
}
#endif

void ms_swiglu(int n, const float *gate, const float *up, float *out) {
#ifdef MS_X86
    if (ms_level() >= MS_LEVEL_AVX2) { swiglu_avx2(n, gate, up, out); return; }
#endif
    swiglu_portable(n, gate, up, out);
}

void ms_rope_pairs(int pairs, const float *c, const float *s, float *x) {
    for (int i = 0; i < pairs; i++) {
        const float x0 = x[2 * i], x1 = x[2 * i + 1];
        x[2 * i] = ROPE0;
        x[2 * i + 1] = ROPE1;
    }
}

float ms_dot_f16_tree(int n, const uint16_t *a, const uint16_t *b) {
    float acc[4][16];
    memset(acc, 0, sizeof(acc));
    const int np = n - n % 64;
    float ax[64], bx[64];
    for (int i = 0; i < np; i += 64) {
        ms_half_to_float(64, a + i, ax);
        ms_half_to_float(64, b + i, bx);
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++) acc[j][l] = fmaf(ax[16 * j + l], bx[16 * j + l], acc[j][l]);
    }
    // Accumulators pairwise: (0 + 2), (1 + 3), then the two sums.
    for (int l = 0; l < 16; l++) {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
        acc[0][l] += acc[1][l];
    }
    // Lanes: 16 -> 8 -> 4 -> 2 -> 1, high half added to low half.
    float t[8], u[4];
    for (int l = 0; l < 8; l++) t[l] = acc[0][l + 8] + acc[0][l];
    for (int l = 0; l < 4; l++) u[l] = t[l + 4] + t[l];
    const float w0 = u[0] + u[2], w1 = u[1] + u[3];
    double sum = (double)(w0 + w1);
    for (int i = np; i < n; i++) sum += (double)(half_to_float(a[i]) * half_to_float(b[i]));
    return (float)sum;
}

// ---------------------------------------------------------------------------------------------------------------
// Encoder element-wise steps.

static inline float gelu_erf_scalar(float v) {
    // erf(z) = 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) e^(-z^2), t = 1 / (1 + p z), z >= 0
    // (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7), odd in z.
    const float z = fabsf(v) * 0.70710678118654752440f;
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    const float e = 1.0f - poly * expf(-z * z);
    return 0.5f * v * (1.0f + (v < 0 ? -e : e));
}

#ifdef MS_X86
MS_AVX2 static void gelu_erf_avx2(int n, float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign, v), _mm256_set1_ps(0.70710678118654752440f));
        const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), z, one));
        __m256 poly = _mm256_fmadd_ps(_mm256_set1_ps(1.061405429f), t, _mm256_set1_ps(-1.453152027f));
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
        poly = _mm256_mul_ps(poly, t);
        const __m256 e = _mm256_fnmadd_ps(poly, exp_neg_avx2(_mm256_mul_ps(_mm256_xor_ps(z, sign), z)), one);
        const __m256 signed_e = _mm256_or_ps(e, _mm256_and_ps(v, sign));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, signed_e)));
    }
    for (; i < n; i++) x[i] = gelu_erf_scalar(x[i]);
}
#endif

static void gelu_erf_portable(int n, float *x) {
    for (int i = 0; i < n; i++) x[i] = gelu_erf_scalar(x[i]);
}

void ms_add_layer_norm(int rows, int d, float *x, const float *y, const float *weight, const float *bias, float eps) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * d;
        const float *add = y ? y + (size_t)r * d : NULL;
        double mean = 0;
        for (int i = 0; i < d; i++) {
            if (add) row[i] += add[i];
            mean += row[i];
        }
        mean /= d;
        double var = 0;
        for (int i = 0; i < d; i++) { const double e = row[i] - mean; var += e * e; }
        const float inv = (float)(1.0 / sqrt(var / d + eps)), m = (float)mean;
        for (int i = 0; i < d; i++) row[i] = (row[i] - m) * inv * weight[i] + bias[i];
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Attention (built on the dispatched helpers below).

#ifdef MS_X86
/// `ms_dot_f16_tree` for lengths that are a multiple of 64, in registers: each of the four 16-lane accumulators is
/// a pair of 8-lane registers, every lane sees the same multiply-adds in the same order, and the reduction follows
/// the same tree, so the result is bit-identical.
MS_AVX2 static inline float dot_f16_tree64_avx2(int n, const uint16_t *a, const uint16_t *b) {
    __m256 lo[4], hi[4];
    for (int j = 0; j < 4; j++) lo[j] = hi[j] = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 64) {
        for (int j = 0; j < 4; j++) {
            const uint16_t *pa = a + i + 16 * j, *pb = b + i + 16 * j;
            lo[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)pa)),
                                    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)pb)), lo[j]);
            hi[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pa + 8))),
                                    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + 8))), hi[j]);
        }
    }
    const __m256 lo0 = _mm256_add_ps(_mm256_add_ps(lo[0], lo[2]), _mm256_add_ps(lo[1], lo[3]));
    const __m256 hi0 = _mm256_add_ps(_mm256_add_ps(hi[0], hi[2]), _mm256_add_ps(hi[1], hi[3]));
    const __m256 t = _mm256_add_ps(hi0, lo0);                                                    // 16 -> 8
    const __m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));        // 8 -> 4
    const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));                                        // (0+2), (1+3)
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}

/// Rounds each lane to half precision and back.
MS_AVX2 static inline __m256 round_half(__m256 v) { return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)); }

/// `ms_attend` with the half-precision accumulator for head sizes that are a multiple of 64, the accumulator held
/// as floats that are rounded through half precision after every step (what storing it in half precision does).
MS_AVX2 static void attend_half_avx2(int n, int head_size, float scale, const float *q, const uint16_t *keys,
                                     const uint16_t *values, int stride, float *out) {
    uint16_t query16[512];
    float acc[512];
    float_to_half_avx2(head_size, q, query16);
    memset(acc, 0, sizeof(float) * (size_t)head_size);
    float sum = 0, max = -INFINITY;
    for (int p = 0; p < n; p++) {
        const float s = dot_f16_tree64_avx2(head_size, keys + (size_t)p * stride, query16) * scale;
        float ms = 1.0f, vs = 1.0f;
        if (s > max) {
            const float old = max;
            max = s;
            ms = expf(old - max);
            const __m256 m = _mm256_set1_ps(ms);
            for (int i = 0; i < head_size; i += 8) _mm256_storeu_ps(acc + i, round_half(_mm256_mul_ps(_mm256_loadu_ps(acc + i), m)));
        } else {
            vs = expf(s - max);
        }
        const __m256 a = _mm256_set1_ps(vs);
        const uint16_t *v = values + (size_t)p * stride;
        for (int i = 0; i < head_size; i += 8) {
            const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
            _mm256_storeu_ps(acc + i, round_half(_mm256_fmadd_ps(a, x, _mm256_loadu_ps(acc + i))));
        }
        sum = fmaf(sum, ms, vs);
    }
    const float inv = sum > 0 ? 1.0f / sum : 0.0f;
    for (int i = 0; i < head_size; i++) out[i] = acc[i] * inv;
}
#endif

void ms_attend(int n, int head_size, float scale, const float *q, const uint16_t *keys, const uint16_t *values,
               int stride, int half_accumulator, float *out) {
#ifdef MS_X86
    if (half_accumulator && head_size % 64 == 0 && head_size <= 512 && ms_level() >= MS_LEVEL_AVX2) {
        attend_half_avx2(n, head_size, scale, q, keys, values, stride, out);
        return;
    }
#endif
    float query[512];
    uint16_t acc16[512], query16[512];
    float row[512];
    if (head_size > 512) return;
    if (half_accumulator) {
        ms_float_to_half(head_size, q, query16);
        memset(acc16, 0, sizeof(uint16_t) * (size_t)head_size);
    } else {
        memcpy(query, q, sizeof(float) * (size_t)head_size);
        memset(out, 0, sizeof(float) * (size_t)head_size);
    }
    float sum = 0, max = -INFINITY;
    for (int p = 0; p < n; p++) {
        const float s = (half_accumulator ? ms_dot_f16_tree(head_size, keys + (size_t)p * stride, query16)
                                          : ms_dot_f16_f32(head_size, keys + (size_t)p * stride, query)) * scale;
        float ms = 1.0f, vs = 1.0f;
        if (s > max) {
            const float old = max;
            max = s;
            ms = expf(old - max);
            if (half_accumulator) {
                ms_half_to_float(head_size, acc16, row);
                for (int i = 0; i < head_size; i++) row[i] *= ms;
                ms_float_to_half(head_size, row, acc16);
            } else {
                for (int i = 0; i < head_size; i++) out[i] *= ms;
            }
        } else {
            vs = expf(s - max);
        }
        if (half_accumulator) {
            ms_half_to_float(head_size, acc16, row);
            ms_axpy_f16(head_size, vs, values + (size_t)p * stride, row);
            ms_float_to_half(head_size, row, acc16);
        } else {
            ms_axpy_f16(head_size, vs, values + (size_t)p * stride, out);
        }
        sum = fmaf(sum, ms, vs);
    }
    if (half_accumulator) ms_half_to_float(head_size, acc16, out);
    const float inv = sum > 0 ? 1.0f / sum : 0.0f;
    for (int i = 0; i < head_size; i++) out[i] *= inv;
}

// ---------------------------------------------------------------------------------------------------------------
// Dispatch.

static int current_level = -1;

int ms_detect_level(void) {
#ifdef MS_X86
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512vnni"))
        return MS_LEVEL_AVX512_VNNI;
    if (avx2) return MS_LEVEL_AVX2;
#endif
    return MS_LEVEL_PORTABLE;
}

int ms_level(void) {
    if (current_level < 0) current_level = ms_detect_level();
    return current_level;
}

int ms_set_level(int level) {
    int best = ms_detect_level();
    current_level = level < 0 ? 0 : (level > best ? best : level);
    return current_level;
}

#ifdef MS_X86
#define DISPATCH(name, args) (ms_level() >= MS_LEVEL_AVX2 ? name##_avx2 args : name##_portable args)
#else
#define DISPATCH(name, args) (name##_portable args)
#endif

float ms_dot_q4_1_q8_1(int blocks, const void *w, const int8_t *q, const float *d, const float *s) {
    float y;
    ms_gemv(MS_TYPE_Q4_1, 1, blocks, w, 20 * blocks, q, d, s, &y, 0);
    return y;
}
void ms_dot4_q4_1_q8_1(int blocks, const void *w, const int8_t *q, const float *d, const float *s, int stride, float *out) {
#ifdef MS_X86
    if (ms_level() >= MS_LEVEL_AVX512_VNNI) { dot4_q4_1_vnni(blocks, w, q, d, s, stride, out); return; }
    if (ms_level() >= MS_LEVEL_AVX2) { dot4_q4_1_avx2(blocks, w, q, d, s, stride, out); return; }
#endif
    for (int t = 0; t < 4; t++) out[t] = dot_q4_1_q8_1_portable(blocks, w, q + (size_t)t * stride, d + t * blocks, s + t * blocks);
}
void ms_dot4_q8_0_q8_0(int blocks, const void *w, const int8_t *q, const float *d, int stride, float *out) {
#ifdef MS_X86
    if (ms_level() >= MS_LEVEL_AVX512_VNNI) { dot4_q8_0_vnni(blocks, w, q, d, stride, out); return; }
    if (ms_level() >= MS_LEVEL_AVX2) { dot4_q8_0_avx2(blocks, w, q, d, stride, out); return; }
#endif
    for (int t = 0; t < 4; t++) out[t] = dot_q8_0_q8_0_portable(blocks, w, q + (size_t)t * stride, d + t * blocks);
}
void ms_gemv(int type, int nrows, int blocks, const void *w, int row_bytes, const int8_t *q, const float *d, const float *s,
             float *y, int accumulate) {
    const uint8_t *x = (const uint8_t *)w;
#ifdef MS_X86
    const int level = ms_level();
    if (level >= MS_LEVEL_AVX2 && (type == MS_TYPE_Q4_1 || type == MS_TYPE_Q8_0)) {
        const int vnni = level >= MS_LEVEL_AVX512_VNNI;
        if (type == MS_TYPE_Q4_1) (vnni ? gemv_q4_1_vnni : gemv_q4_1_avx2)(nrows, blocks, x, (size_t)row_bytes, q, d, s, y, accumulate);
        else (vnni ? gemv_q8_0_vnni : gemv_q8_0_avx2)(nrows, blocks, x, (size_t)row_bytes, q, d, y, accumulate);
        return;
    }
#endif
    for (int r = 0; r < nrows; r++) {
        const void *row = x + (size_t)r * (size_t)row_bytes;
        const float v = type == MS_TYPE_Q4_1 ? dot_q4_1_q8_1_portable(blocks, row, q, d, s)
                      : type == MS_TYPE_Q4_0 ? ms_dot_q4_0_q8_0(blocks, row, q, d)
                                             : dot_q8_0_q8_0_portable(blocks, row, q, d);
        y[r] = accumulate ? y[r] + v : v;
    }
}
float ms_dot_q4_0_q8_0(int blocks, const void *w, const int8_t *q, const float *d) {
    return DISPATCH(dot_q4_0_q8_0, (blocks, w, q, d));
}
float ms_dot_q8_0_q8_0(int blocks, const void *w, const int8_t *q, const float *d) {
    float y;
    ms_gemv(MS_TYPE_Q8_0, 1, blocks, w, 34 * blocks, q, d, NULL, &y, 0);
    return y;
}
void ms_quantize_q8(int blocks, const float *x, int8_t *q, float *d, float *s) {
    DISPATCH(quantize_q8, (blocks, x, q, d, s));
}
void ms_half_to_float(int n, const uint16_t *h, float *f) { DISPATCH(half_to_float, (n, h, f)); }
void ms_float_to_half(int n, const float *f, uint16_t *h) { DISPATCH(float_to_half, (n, f, h)); }
float ms_dot_f32(int n, const float *a, const float *b) { return DISPATCH(dot_f32, (n, a, b)); }
float ms_dot_f16_f32(int n, const uint16_t *a, const float *b) { return DISPATCH(dot_f16_f32, (n, a, b)); }
void ms_axpy_f16(int n, float a, const uint16_t *x, float *y) { DISPATCH(axpy_f16, (n, a, x, y)); }
void ms_gemm_f32(int m, int n, int k, const float *a, int lda, const float *w, int ldw, const float *bias, float *c, int ldc) {
    DISPATCH(gemm_f32, (m, n, k, a, lda, w, ldw, bias, c, ldc));
}
void ms_gelu_erf(int n, float *x) { DISPATCH(gelu_erf, (n, x)); }
void ms_gemm_f16(int m, int n, int k, const float *a, int lda, const uint16_t *w, int ldw, const float *bias, float *c, int ldc) {
    DISPATCH(gemm_f16, (m, n, k, a, lda, w, ldw, bias, c, ldc));
}
