// A small persistent thread pool for the numeric loops: workers wait for a job, take chunks with an atomic
// counter, and sleep on a condition variable after a short spin, so an idle process uses no CPU. One job runs
// at a time; a caller that finds the pool busy runs its chunks itself.
#include "ms_kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#define MS_MAX_WORKERS 64

static struct {
    pthread_mutex_t submit;          // held by the thread whose job is running
    pthread_mutex_t lock;            // guards sleeping/wakeups
    pthread_cond_t wake;
    atomic_uint generation;          // odd while a job is open to helpers, even while closed (between jobs)
    atomic_int next_chunk;
    atomic_int done_chunks;
    atomic_int active_workers;       // workers inside the current job
    atomic_int admitted;             // workers admitted to the current job (at most helpers)
    int helpers;                     // threads - 1 for the current job
    int chunks;
    ms_chunk_fn fn;
    void *ctx;
    int workers;
    int started;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void run_chunks(void) {
    for (;;) {
        const int c = atomic_fetch_add(&pool.next_chunk, 1);
        if (c >= pool.chunks) break;
        pool.fn(pool.ctx, c);
        atomic_fetch_add(&pool.done_chunks, 1);
    }
}

static void *worker(void *arg) {
    (void)arg;
    unsigned seen = atomic_load(&pool.generation);
    for (;;) {
        // Spin briefly for the next job (jobs come back to back inside a forward pass), then sleep.
        int spins = 0;
        while (atomic_load_explicit(&pool.generation, memory_order_acquire) == seen) {
            if (++spins < 20000) {
#if defined(__x86_64__)
                __builtin_ia32_pause();
#endif
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = atomic_load_explicit(&pool.generation, memory_order_acquire);
        // Announce ourselves, then make sure the job we saw is open and still the current one. The submitter closes a
        // job (an even generation) before it returns and waits for active workers to leave before it writes the next
        // one, so a worker that was preempted here either sees the closed generation and stays out, or announced
        // itself before the close and holds the next job back until it leaves: it never reads a job being written.
        atomic_fetch_add(&pool.active_workers, 1);
        if ((seen & 1u) && atomic_load(&pool.generation) == seen && atomic_fetch_add(&pool.admitted, 1) < pool.helpers)
            run_chunks();
        atomic_fetch_sub(&pool.active_workers, 1);
    }
    return NULL;
}

static void start_pool(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    pool.workers = cores > 1 ? (int)(cores - 1 < MS_MAX_WORKERS ? cores - 1 : MS_MAX_WORKERS) : 0;
    for (int i = 0; i < pool.workers; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, NULL) != 0) { pool.workers = i; break; }
        pthread_attr_destroy(&attr);
    }
    pool.started = 1;
}

void ms_parallel_for(int chunks, int threads, ms_chunk_fn fn, void *ctx) {
    pthread_once(&pool_once, start_pool);
    if (chunks <= 0) return;
    if (threads <= 1 || chunks == 1 || pool.workers == 0 || pthread_mutex_trylock(&pool.submit) != 0) {
        for (int c = 0; c < chunks; c++) fn(ctx, c);
        return;
    }
    // Workers from the previous job may still be leaving run_chunks; wait until none is inside.
    while (atomic_load(&pool.active_workers) != 0) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.chunks = chunks;
    pool.helpers = threads - 1;
    atomic_store(&pool.admitted, 0);
    atomic_store(&pool.done_chunks, 0);
    atomic_store(&pool.next_chunk, 0);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.generation, 1);  // open: odd
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    run_chunks();
    while (atomic_load_explicit(&pool.done_chunks, memory_order_acquire) < chunks) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    atomic_fetch_add(&pool.generation, 1);  // closed: even; late helpers stay out
    pthread_mutex_unlock(&pool.submit);
}
