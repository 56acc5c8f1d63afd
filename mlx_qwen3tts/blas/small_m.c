/* Small-M products c = alpha * a . w^T + beta * c: a few rows times a weight matrix.
 *
 * A batch of generation streams makes every linear layer a product of M = 2..16 rows with a
 * weight matrix stored N x K (`x @ W.T`). OpenBLAS's sgemm costs as much per row there as a
 * matrix-vector product, so a batch gains nothing. This kernel reads each weight row once for
 * all M rows of `a`, and threads over the output columns.
 *
 * Exactness: each output element is accumulated in one fixed order (one 8-wide FMA chain over
 * K, a fixed horizontal sum, then the scalar tail), the same whichever rows it is computed
 * alongside and however the columns are split among threads. So a row's result does not depend
 * on how many other rows are in the product: a stream in a batch computes what it computes alone.
 */
#include <math.h>
#include <stdlib.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SMALL_M_X86 1
#endif

/* Scalar form: the order of the vector form, lane by lane, for CPUs without AVX2/FMA. */
static float dot_scalar(const float *x, const float *w, int k) {
    float v[8] = {0};
    int i = 0;
    for (; i + 8 <= k; i += 8)
        for (int l = 0; l < 8; l++) v[l] = fmaf(x[i + l], w[i + l], v[l]);
    /* the vector form's horizontal sum: halves, then pairs, then the last two */
    for (int l = 0; l < 4; l++) v[l] = v[l] + v[l + 4];
    v[0] = v[0] + v[2];
    v[1] = v[1] + v[3];
    float s = v[0] + v[1];
    for (; i < k; i++) s = fmaf(x[i], w[i], s);
    return s;
}

static void store(float s, float alpha, float beta, float *out) {
    s *= alpha;
    *out = beta == 0.0f ? s : s + beta * *out;  /* beta == 0 must not read c: it may be garbage */
}

static void columns_scalar(int m, int j0, int j1, int k, float alpha, const float *a, int lda, const float *w,
                           int ldw, float beta, float *c, int ldc) {
    for (int j = j0; j < j1; j++)
        for (int r = 0; r < m; r++)
            store(dot_scalar(a + (long)r * lda, w + (long)j * ldw, k), alpha, beta, c + (long)r * ldc + j);
}

#ifdef SMALL_M_X86
enum { ROWS = 4, COLS = 3 };

__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 p = _mm_add_ps(h, _mm_movehl_ps(h, h)); /* lanes 0+2, 1+3 */
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

/* An R x C tile of c (R <= ROWS, C <= COLS; constants once inlined): every element runs the
 * same chain, one vector FMA per vector of K, whatever tile it is in. */
#define TILE(NAME, TARGET, VEC, LANES, ZERO, LOAD, FMA, HSUM)                                                 \
    __attribute__((target(TARGET), always_inline)) static inline void NAME(                                   \
        int R, int C, int k, float alpha, const float *a, int lda, const float *w, int ldw, float beta,       \
        float *c, int ldc) {                                                                                  \
        VEC acc[ROWS][COLS];                                                                                  \
        for (int r = 0; r < R; r++)                                                                           \
            for (int q = 0; q < C; q++) acc[r][q] = ZERO();                                                   \
        int i = 0;                                                                                            \
        for (; i + LANES <= k; i += LANES) {                                                                  \
            VEC wv[COLS];                                                                                     \
            for (int q = 0; q < C; q++) wv[q] = LOAD(w + (long)q * ldw + i);                                  \
            for (int r = 0; r < R; r++) {                                                                     \
                VEC x = LOAD(a + (long)r * lda + i);                                                          \
                for (int q = 0; q < C; q++) acc[r][q] = FMA(x, wv[q], acc[r][q]);                             \
            }                                                                                                 \
        }                                                                                                     \
        for (int r = 0; r < R; r++)                                                                           \
            for (int q = 0; q < C; q++) {                                                                     \
                const float *x = a + (long)r * lda, *wq = w + (long)q * ldw;                                  \
                float s = HSUM(acc[r][q]);                                                                    \
                for (int t = i; t < k; t++) s = fmaf(x[t], wq[t], s);                                         \
                store(s, alpha, beta, c + (long)r * ldc + q);                                                 \
            }                                                                                                 \
    }

TILE(tile8, "avx2,fma", __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_fmadd_ps, hsum8)

#define ROW_TILES(TILE_FN, C)                                                                                \
    do {                                                                                                     \
        int r = 0;                                                                                           \
        for (; r + ROWS <= m; r += ROWS)                                                                     \
            TILE_FN(ROWS, C, k, alpha, a + (long)r * lda, lda, wj, ldw, beta, c + (long)r * ldc + j, ldc);   \
        for (; r + 2 <= m; r += 2)                                                                           \
            TILE_FN(2, C, k, alpha, a + (long)r * lda, lda, wj, ldw, beta, c + (long)r * ldc + j, ldc);      \
        for (; r < m; r++)                                                                                   \
            TILE_FN(1, C, k, alpha, a + (long)r * lda, lda, wj, ldw, beta, c + (long)r * ldc + j, ldc);      \
    } while (0)

#define COLUMNS(NAME, TARGET, TILE_FN)                                                                       \
    __attribute__((target(TARGET))) static void NAME(int m, int j0, int j1, int k, float alpha,               \
                                                     const float *a, int lda, const float *w, int ldw,        \
                                                     float beta, float *c, int ldc) {                         \
        int j = j0;                                                                                          \
        for (; j + COLS <= j1; j += COLS) {                                                                  \
            const float *wj = w + (long)j * ldw;                                                             \
            ROW_TILES(TILE_FN, COLS);                                                                        \
        }                                                                                                    \
        for (; j < j1; j++) {                                                                                \
            const float *wj = w + (long)j * ldw;                                                             \
            ROW_TILES(TILE_FN, 1);                                                                           \
        }                                                                                                    \
    }

COLUMNS(columns_avx2, "avx2,fma", tile8)
#endif

typedef void (*columns_fn)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);

/* One kernel per process, chosen by the CPU: every product of the process sums the same way.
 * (AVX-512 measured no faster here: a few rows are bound by reading the weights.) */
static columns_fn kernel(void) {
    static columns_fn chosen;
    if (!chosen) {
        chosen = columns_scalar;
#ifdef SMALL_M_X86
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) chosen = columns_avx2;
#endif
    }
    return chosen;
}

/* Helper threads take chunks of columns from a shared ticket; the caller takes them too and
 * waits only for chunks a helper has claimed. A helper that is not scheduled (a busy machine)
 * claims nothing and holds nobody up, unlike a barrier; one that wakes after its job is over
 * finds the job's generation gone from the ticket and goes back to sleep. */
enum { CHUNK_COLUMNS = 48, MIN_THREADED_WORK = 1 << 21 /* multiply-adds */ };

typedef struct {
    columns_fn run;
    int m, n, k, lda, ldw, ldc, chunks;
    float alpha, beta;
    const float *a, *w;
    float *c;
} job_t;

static pthread_mutex_t caller_lock = PTHREAD_MUTEX_INITIALIZER; /* one threaded product at a time */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_posted = PTHREAD_COND_INITIALIZER;
static job_t job;
static unsigned job_generation;
static _Atomic unsigned long long ticket; /* generation << 32 | next chunk */
static _Atomic int chunks_done;

static int claim(unsigned generation, int chunks) {
    unsigned long long t = atomic_load(&ticket);
    for (;;) {
        if ((unsigned)(t >> 32) != generation || (int)(t & 0xffffffffu) >= chunks) return -1;
        if (atomic_compare_exchange_weak(&ticket, &t, t + 1)) return (int)(t & 0xffffffffu);
    }
}

static void work(const job_t *j, unsigned generation) {
    int i;
    while ((i = claim(generation, j->chunks)) >= 0) {
        int j0 = i * CHUNK_COLUMNS, j1 = j0 + CHUNK_COLUMNS < j->n ? j0 + CHUNK_COLUMNS : j->n;
        j->run(j->m, j0, j1, j->k, j->alpha, j->a, j->lda, j->w, j->ldw, j->beta, j->c, j->ldc);
        atomic_fetch_add(&chunks_done, 1);
    }
}

static void *helper(void *unused) {
    (void)unused;
    unsigned seen = 0;
    pthread_mutex_lock(&job_lock);
    for (;;) {
        while (job_generation == seen) pthread_cond_wait(&job_posted, &job_lock);
        seen = job_generation;
        job_t mine = job;
        pthread_mutex_unlock(&job_lock);
        work(&mine, seen);
        pthread_mutex_lock(&job_lock);
    }
    return NULL;
}

/* Helpers: MLX_QWEN3TTS_SMALL_M_THREADS - 1, else one per other online core. */
static int helper_count(void) {
    static int count = -1;
    if (count < 0) {
        const char *env = getenv("MLX_QWEN3TTS_SMALL_M_THREADS");
        long cores = env && atoi(env) > 0 ? atoi(env) : sysconf(_SC_NPROCESSORS_ONLN);
        count = cores > 1 ? (int)(cores > 16 ? 15 : cores - 1) : 0;
        for (int i = 0; i < count; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, helper, NULL) != 0) {
                count = i;
                break;
            }
            pthread_detach(t);
        }
    }
    return count;
}

/* c (m x n, ldc) = alpha * a (m x k, lda) . w^T, w (n x k, ldw) row-major; + beta * c. */
void small_m_gemm(int m, int n, int k, float alpha, const float *a, int lda, const float *w, int ldw, float beta,
                  float *c, int ldc) {
    columns_fn run = kernel();
    int chunks = (n + CHUNK_COLUMNS - 1) / CHUNK_COLUMNS;
    /* Small products, or a second caller while the helpers work for a first: this thread alone. */
    if ((long)m * n * k < MIN_THREADED_WORK || chunks < 2 || helper_count() == 0 ||
        pthread_mutex_trylock(&caller_lock) != 0) {
        run(m, 0, n, k, alpha, a, lda, w, ldw, beta, c, ldc);
        return;
    }
    pthread_mutex_lock(&job_lock);
    job = (job_t){run, m, n, k, lda, ldw, ldc, chunks, alpha, beta, a, w, c};
    unsigned generation = ++job_generation;
    atomic_store(&chunks_done, 0);
    atomic_store(&ticket, (unsigned long long)generation << 32);
    pthread_cond_broadcast(&job_posted);
    pthread_mutex_unlock(&job_lock);
    work(&job, generation);
    for (int spins = 0; atomic_load(&chunks_done) < chunks; spins++)
        if (spins > 64) sched_yield();
    pthread_mutex_unlock(&caller_lock);
}
