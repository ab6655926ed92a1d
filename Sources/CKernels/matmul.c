// Matrix products of stored weights with a batch of activation rows, fanned out over the thread pool. The loops live
// here rather than in Swift so the hot path makes no reference-counting traffic: a Swift closure called per row from
// two threads retains its context each time, and the shared counter's cache line bouncing between cores cost more
// than the arithmetic (perf: 45%).
#include "ms_kernels.h"

#include <math.h>
#include <string.h>

size_t ms_matmul_scratch(int tokens, int cols) {
    const size_t blocks = (size_t)tokens * (size_t)(cols / 32);
    // Values, then block scales and sums (floats, 64-byte aligned start).
    return ((size_t)tokens * (size_t)cols + 63) / 64 * 64 + 2 * blocks * sizeof(float);
}

typedef struct {
    const ms_matrix *w;
    int tokens;
    const float *x;
    const int8_t *q;
    const float *d, *s;
    float *const *y;
    int flags;
    int chunk_rows[MS_MATMUL_MAX];
    int first_chunk[MS_MATMUL_MAX + 1];
} matmul_job;

/// One product of a float or half-precision weight row `r` with activation row `t` (quantized rows go through
/// `ms_gemv` and the four-token kernels).
static inline float dot_float(const matmul_job *job, const ms_matrix *w, int r, int t) {
    const void *row = (const uint8_t *)w->data + (size_t)r * (size_t)w->row_bytes;
    const float *x = job->x + (size_t)t * (size_t)w->cols;
    return w->type == MS_TYPE_F16 ? ms_dot_f16_f32(w->cols, (const uint16_t *)row, x) : ms_dot_f32(w->cols, (const float *)row, x);
}

/// Rows `r0..<r1` of matrix `w` for every token into `y` (row stride `w->rows`): tokens in tiles of 16 so a chunk's
/// weight rows stay in L1 while the tile's activations stay in L2, four tokens at a time where a kernel unpacks
/// the weight row once for four; the remaining tokens (all of them when decoding) row after row through `ms_gemv`.
static void product_rows(const matmul_job *job, const ms_matrix *w, int r0, int r1, float *y, int accumulate) {
    const int tokens = job->tokens, rows = w->rows, blocks = w->cols / 32;
    const int quantized = w->type == MS_TYPE_Q4_1 || w->type == MS_TYPE_Q4_0 || w->type == MS_TYPE_Q8_0;
    const int four = w->type == MS_TYPE_Q4_1 || w->type == MS_TYPE_Q8_0;
    for (int t0 = 0; t0 < tokens; t0 += 16) {
        const int t1 = t0 + 16 < tokens ? t0 + 16 : tokens;
        const int t4 = four ? t0 + (t1 - t0) / 4 * 4 : t0;
        for (int r = r0; r < r1 && t4 > t0; r++) {
            const void *row = (const uint8_t *)w->data + (size_t)r * (size_t)w->row_bytes;
            for (int t = t0; t < t4; t += 4) {
                float out[4];
                const int8_t *q = job->q + (size_t)t * (size_t)w->cols;
                const float *d = job->d + (size_t)t * (size_t)blocks;
                if (w->type == MS_TYPE_Q4_1)
                    ms_dot4_q4_1_q8_1(blocks, row, q, d, job->s + (size_t)t * (size_t)blocks, w->cols, out);
                else
                    ms_dot4_q8_0_q8_0(blocks, row, q, d, w->cols, out);
                for (int i = 0; i < 4; i++) {
                    float *dst = y + (size_t)(t + i) * (size_t)rows + r;
                    *dst = accumulate ? *dst + out[i] : out[i];
                }
            }
        }
        for (int t = t4; t < t1; t++) {
            float *dst = y + (size_t)t * (size_t)rows;
            if (quantized) {
                ms_gemv(w->type, r1 - r0, blocks, (const uint8_t *)w->data + (size_t)r0 * (size_t)w->row_bytes, w->row_bytes,
                        job->q + (size_t)t * (size_t)w->cols, job->d + (size_t)t * (size_t)blocks,
                        job->s + (size_t)t * (size_t)blocks, dst + r0, accumulate);
            } else {
                for (int r = r0; r < r1; r++) dst[r] = accumulate ? dst[r] + dot_float(job, w, r, t) : dot_float(job, w, r, t);
            }
        }
    }
}

static void matmul_chunk(void *ctx, int chunk) {
    const matmul_job *job = (const matmul_job *)ctx;
    int m = 0;
    while (chunk >= job->first_chunk[m + 1]) m++;
    const int c = chunk - job->first_chunk[m];
    const ms_matrix *w = &job->w[m];
    const int r0 = c * job->chunk_rows[m];
    const int r1 = r0 + job->chunk_rows[m] < w->rows ? r0 + job->chunk_rows[m] : w->rows;
    if (job->flags & MS_MATMUL_SWIGLU) {
        // Gate and up rows of the same features in one chunk, then silu(gate) · up over them for every token.
        product_rows(job, &job->w[0], r0, r1, job->y[0], 0);
        product_rows(job, &job->w[1], r0, r1, job->y[1], 0);
        for (int t = 0; t < job->tokens; t++) {
            float *g = job->y[0] + (size_t)t * (size_t)w->rows + r0;
            ms_swiglu(r1 - r0, g, job->y[1] + (size_t)t * (size_t)w->rows + r0, g);
        }
        return;
    }
    product_rows(job, w, r0, r1, job->y[m], job->flags & MS_MATMUL_ACCUMULATE);
}

void ms_matmul(int count, const ms_matrix *w, int tokens, const float *x, float *const *y, int flags, int threads,
               void *scratch) {
    if (count <= 0 || count > MS_MATMUL_MAX || tokens <= 0) return;
    matmul_job job;
    job.w = w;
    job.tokens = tokens;
    job.x = x;
    job.y = y;
    job.flags = flags;
    const int cols = w[0].cols;
    int quantized = 0;
    for (int i = 0; i < count; i++) quantized |= w[i].type == MS_TYPE_Q4_1 || w[i].type == MS_TYPE_Q4_0 || w[i].type == MS_TYPE_Q8_0;
    if (quantized) {
        // Activations quantized once for every matrix of the job (Q8_1: scales and scaled sums; Q8_0 ignores the sums).
        const size_t blocks = (size_t)tokens * (size_t)(cols / 32);
        int8_t *q = (int8_t *)scratch;
        float *d = (float *)((uint8_t *)scratch + ((size_t)tokens * (size_t)cols + 63) / 64 * 64);
        ms_quantize_q8((int)blocks, x, q, d, d + blocks);
        job.q = q;
        job.d = d;
        job.s = d + blocks;
    } else {
        job.q = NULL;
        job.d = job.s = NULL;
    }
    // About eight chunks per thread for balance, rows per chunk a multiple of 4; a swiglu job is chunked over its gate.
    const int jobs = (flags & MS_MATMUL_SWIGLU) ? 1 : count;
    int total_rows = 0;
    for (int i = 0; i < jobs; i++) total_rows += w[i].rows;
    const int target = threads > 1 ? threads * 8 : 1;
    job.first_chunk[0] = 0;
    for (int i = 0; i < jobs; i++) {
        int per = (total_rows + target - 1) / target;
        per = (per + 3) & ~3;
        if (per < 16) per = 16;
        job.chunk_rows[i] = per;
        job.first_chunk[i + 1] = job.first_chunk[i] + (w[i].rows + per - 1) / per;
    }
    ms_parallel_for(job.first_chunk[jobs], threads, matmul_chunk, &job);
}
