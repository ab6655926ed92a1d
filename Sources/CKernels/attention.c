// Attention over the half-precision KV cache, fanned out over the thread pool, and the RMS norm.
//
// Short batches (decoding, fewer than 64 new tokens) take one `ms_attend` per token and head, reproducing
// llama.cpp's arithmetic. Longer single-sequence batches (prefill) go through tiles: a tile of queries of the heads
// that share a KV head against a tile of keys converted to single precision once, scores as a small matrix product,
// an online softmax per query row, and the values accumulated in single precision.
#include "ms_kernels.h"
#include "simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int heads, group, head_size, q_stride, kv_stride, half_accumulator;
    float scale;
    const int *lengths;
    const uint16_t *const *keys, *const *values;
    const float *q;
    float *out;
} attention_job;

static void attention_chunk(void *ctx, int chunk) {
    const attention_job *job = (const attention_job *)ctx;
    const int t = chunk / job->heads, h = chunk % job->heads;
    const int kv = (h / job->group) * job->head_size;
    const size_t offset = (size_t)t * (size_t)job->q_stride + (size_t)h * (size_t)job->head_size;
    ms_attend(job->lengths[t], job->head_size, job->scale, job->q + offset, job->keys[t] + kv, job->values[t] + kv,
              job->kv_stride, job->half_accumulator, job->out + offset);
}

void ms_attention(int tokens, int heads, int kv_heads, int head_size, const int *lengths, const uint16_t *const *keys,
                  const uint16_t *const *values, int half_accumulator, const float *q, float *out, int threads) {
    attention_job job = {
        .heads = heads, .group = heads / kv_heads, .head_size = head_size, .q_stride = heads * head_size,
        .kv_stride = kv_heads * head_size, .half_accumulator = half_accumulator,
        .scale = 1.0f / sqrtf((float)head_size), .lengths = lengths, .keys = keys, .values = values, .q = q, .out = out,
    };
    ms_parallel_for(tokens * heads, threads, attention_chunk, &job);
}

#define Q_TILE 32
#define KV_TILE 64

typedef struct {
    int tokens, start, heads, group, head_size, q_stride, kv_stride, tiles, kv_heads;
    float scale;
    const float *q;
    const uint16_t *keys, *values;
    float *out;
} tiled_job;

#ifdef MS_X86
/// Per-thread scratch of the tiled path, grown on demand and kept for the thread's life.
static _Thread_local float *tile_scratch;
static _Thread_local size_t tile_scratch_floats;

static float *scratch_floats(size_t n) {
    if (n > tile_scratch_floats) {
        free(tile_scratch);
        tile_scratch = (float *)aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
        tile_scratch_floats = tile_scratch ? n : 0;
    }
    return tile_scratch;
}

/// One KV head's query heads over one tile of query rows: every key tile up to the tile's last position.
MS_AVX2 static void tiled_chunk(void *ctx, int chunk) {
    const tiled_job *job = (const tiled_job *)ctx;
    // Later query tiles see more keys: hand them out first so the last chunks are the short ones.
    const int qt = job->tiles - 1 - chunk / job->kv_heads, g = chunk % job->kv_heads;
    const int hs = job->head_size, group = job->group;
    const int q0 = qt * Q_TILE, q1 = q0 + Q_TILE < job->tokens ? q0 + Q_TILE : job->tokens, rows = q1 - q0;
    const size_t o_floats = (size_t)group * Q_TILE * hs;
    float *buf = scratch_floats(2 * (size_t)KV_TILE * hs + o_floats + 2 * (size_t)group * Q_TILE + KV_TILE);
    if (!buf) {
        // No scratch for this thread: the chunk's rows through the per-token single-precision path instead.
        for (int hh = 0; hh < group; hh++) {
            const size_t h = (size_t)(g * group + hh) * (size_t)hs;
            for (int r = 0; r < rows; r++) {
                const size_t row = (size_t)(q0 + r) * (size_t)job->q_stride + h;
                ms_attend(job->start + q0 + r + 1, hs, job->scale, job->q + row, job->keys + (size_t)g * hs,
                          job->values + (size_t)g * hs, job->kv_stride, 0, job->out + row);
            }
        }
        return;
    }
    float *kt = buf;                            // keys transposed: kt[d * KV_TILE + j]
    float *vt = kt + (size_t)KV_TILE * hs;      // values: vt[j * hs + d]
    float *o = vt + (size_t)KV_TILE * hs;       // accumulators per head and row
    float *m = o + o_floats, *l = m + (size_t)group * Q_TILE;
    float *p = l + (size_t)group * Q_TILE;      // one row's scores, then weights
    memset(o, 0, o_floats * sizeof(float));
    for (int i = 0; i < group * Q_TILE; i++) { m[i] = -INFINITY; l[i] = 0; }
    const int last = job->start + q1;  // positions visible to the tile's last query
    for (int k0 = 0; k0 < last; k0 += KV_TILE) {
        const int kn = k0 + KV_TILE < last ? KV_TILE : last - k0;
        for (int j = 0; j < KV_TILE; j++) {
            if (j < kn) {
                const uint16_t *kr = job->keys + (size_t)(k0 + j) * job->kv_stride + (size_t)g * hs;
                const uint16_t *vr = job->values + (size_t)(k0 + j) * job->kv_stride + (size_t)g * hs;
                for (int d = 0; d < hs; d += 8) {
                    const __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + d)));
                    float lanes[8];
                    _mm256_storeu_ps(lanes, kv);
                    for (int e = 0; e < 8; e++) kt[(size_t)(d + e) * KV_TILE + j] = lanes[e];
                    _mm256_storeu_ps(vt + (size_t)j * hs + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vr + d))));
                }
            } else {
                for (int d = 0; d < hs; d++) kt[(size_t)d * KV_TILE + j] = 0;
            }
        }
        for (int hh = 0; hh < group; hh++) {
            const int h = g * group + hh;
            for (int r = 0; r < rows; r++) {
                const int visible = job->start + q0 + r + 1 - k0;  // keys of this tile the row may see
                if (visible <= 0) continue;
                const int jn = visible < kn ? visible : kn;
                const float *qr = job->q + (size_t)(q0 + r) * job->q_stride + (size_t)h * hs;
                // Scores of the whole tile, eight keys per register.
                __m256 s[KV_TILE / 8];
                for (int b = 0; b < KV_TILE / 8; b++) s[b] = _mm256_setzero_ps();
                for (int d = 0; d < hs; d++) {
                    const __m256 qd = _mm256_set1_ps(qr[d]);
                    const float *kd = kt + (size_t)d * KV_TILE;
                    for (int b = 0; b < KV_TILE / 8; b++) s[b] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kd + 8 * b), s[b]);
                }
                const __m256 scale = _mm256_set1_ps(job->scale);
                for (int b = 0; b < KV_TILE / 8; b++) _mm256_storeu_ps(p + 8 * b, _mm256_mul_ps(s[b], scale));
                float mx = m[hh * Q_TILE + r];
                for (int j = 0; j < jn; j++) mx = p[j] > mx ? p[j] : mx;
                const float corr = expf(m[hh * Q_TILE + r] - mx);
                m[hh * Q_TILE + r] = mx;
                for (int j = jn; j < KV_TILE; j++) p[j] = -INFINITY;
                __m256 sum = _mm256_setzero_ps();
                const __m256 mxv = _mm256_set1_ps(mx);
                for (int b = 0; b < KV_TILE / 8; b++) {
                    const __m256 e = exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(p + 8 * b), mxv));
                    const __m256 masked = _mm256_and_ps(e, _mm256_cmp_ps(_mm256_loadu_ps(p + 8 * b), _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ));
                    _mm256_storeu_ps(p + 8 * b, masked);
                    sum = _mm256_add_ps(sum, masked);
                }
                l[hh * Q_TILE + r] = l[hh * Q_TILE + r] * corr + hsum256(sum);
                float *orow = o + ((size_t)hh * Q_TILE + r) * hs;
                const __m256 c = _mm256_set1_ps(corr);
                for (int d = 0; d < hs; d += 8) _mm256_storeu_ps(orow + d, _mm256_mul_ps(_mm256_loadu_ps(orow + d), c));
                for (int j = 0; j < jn; j++) {
                    const __m256 pj = _mm256_set1_ps(p[j]);
                    const float *vr = vt + (size_t)j * hs;
                    for (int d = 0; d < hs; d += 8)
                        _mm256_storeu_ps(orow + d, _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + d), _mm256_loadu_ps(orow + d)));
                }
            }
        }
    }
    for (int hh = 0; hh < group; hh++) {
        const int h = g * group + hh;
        for (int r = 0; r < rows; r++) {
            const float inv = l[hh * Q_TILE + r] > 0 ? 1.0f / l[hh * Q_TILE + r] : 0.0f;
            const float *orow = o + ((size_t)hh * Q_TILE + r) * hs;
            float *dst = job->out + (size_t)(q0 + r) * job->q_stride + (size_t)h * hs;
            for (int d = 0; d < hs; d++) dst[d] = orow[d] * inv;
        }
    }
}
#endif

int ms_attention_tiled(int tokens, int start, int heads, int kv_heads, int head_size, const float *q,
                       const uint16_t *keys, const uint16_t *values, float *out, int threads) {
#ifdef MS_X86
    if (ms_level() < MS_LEVEL_AVX2 || head_size % 8 != 0 || head_size > 256 || heads % kv_heads != 0) return 0;
    const int tiles = (tokens + Q_TILE - 1) / Q_TILE;
    tiled_job job = {
        .tokens = tokens, .start = start, .heads = heads, .group = heads / kv_heads, .head_size = head_size,
        .q_stride = heads * head_size, .kv_stride = kv_heads * head_size, .tiles = tiles, .kv_heads = kv_heads,
        .scale = 1.0f / sqrtf((float)head_size), .q = q, .keys = keys, .values = values, .out = out,
    };
    ms_parallel_for(tiles * kv_heads, threads, tiled_chunk, &job);
    return 1;
#else
    (void)tokens; (void)start; (void)heads; (void)kv_heads; (void)head_size; (void)q; (void)keys; (void)values;
    (void)out; (void)threads;
    return 0;
#endif
}

void ms_rms_norm(int rows, int d, const float *x, const float *weight, float eps, float *out) {
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * (size_t)d;
        float *dst = out + (size_t)r * (size_t)d;
        double sum = 0;
        for (int i = 0; i < d; i++) {
            const float sq = row[i] * row[i];
            sum += (double)sq;
        }
        const float scale = 1.0f / sqrtf((float)(sum / d) + eps);
        for (int i = 0; i < d; i++) {
            const float scaled = row[i] * scale;
            dst[i] = scaled * weight[i];
        }
    }
}
