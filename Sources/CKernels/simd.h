// Shared x86 helpers of the kernel files (not part of the public header).
#ifndef MS_SIMD_H
#define MS_SIMD_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MS_X86 1
/// Functions compiled for the AVX2 path (chosen at run time, never called on CPUs without these features).
#define MS_AVX2 __attribute__((target("avx2,fma,f16c")))
/// Functions compiled for the AVX-512 VNNI path.
#define MS_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/// Sum of eight lanes: (i, i+4), then (0, 2) and (1, 3), then the last pair.
MS_AVX2 static inline __attribute__((unused)) float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/// e^x for x <= 0 (here x = -z^2): 2^n · p(b) with n = round(x / ln 2), b = x - n ln 2, a degree-5 polynomial.
MS_AVX2 static inline __attribute__((unused)) __m256 exp_neg_avx2(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    b = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), b);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, b, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, b, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, b, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, b, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, b, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(b, b), _mm256_add_ps(b, _mm256_set1_ps(1.0f)));
    const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

#endif

#endif
