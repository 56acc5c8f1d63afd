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
#include <omp.h>

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

/* Threads over the columns: MLX_QWEN3TTS_SMALL_M_THREADS, else one. On a busy machine a
 * thread that is not scheduled holds the others at the barrier, which costs more than the
 * second core brings to a product this size. */
static int thread_count(void) {
    static int count;
    if (!count) {
        const char *env = getenv("MLX_QWEN3TTS_SMALL_M_THREADS");
        count = env && atoi(env) > 0 ? atoi(env) : 1;
    }
    return count;
}

/* c (m x n, ldc) = alpha * a (m x k, lda) . w^T, w (n x k, ldw) row-major; + beta * c. */
void small_m_gemm(int m, int n, int k, float alpha, const float *a, int lda, const float *w, int ldw, float beta,
                  float *c, int ldc) {
    columns_fn run = kernel();
    /* Threads only where the work pays for waking them: 128 K multiply-adds at least. */
    int threads = (long)m * n * k >= (1L << 17) ? thread_count() : 1;
    if (threads > n) threads = n;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = omp_get_thread_num(), count = omp_get_num_threads();
        int j0 = (int)((long)n * t / count), j1 = (int)((long)n * (t + 1) / count);
        run(m, j0, j1, k, alpha, a, lda, w, ldw, beta, c, ldc);
    }
}
