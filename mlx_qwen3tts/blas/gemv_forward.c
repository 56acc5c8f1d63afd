/* Preloaded ahead of OpenBLAS on Linux: sends small products to faster paths.
 *
 * MLX's CPU backend calls cblas_sgemm for every matmul. One generated token makes every
 * product a matrix times a vector, and OpenBLAS before 0.3.28 runs those through its GEMM
 * path, which packs the whole weight matrix first: half the speed of cblas_sgemv. A batch of
 * streams makes them a few rows times the weights (`x @ W.T`), which OpenBLAS's sgemm runs no
 * faster per row: those, one row included, go to `small_m.c`, so that a row's result is the
 * same alone as in a batch. Every other call goes to OpenBLAS's own cblas_sgemm unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
enum { SMALL_M_ROWS = 64 };  /* up to this many rows, the small-M kernel streams the weights once */

void small_m_gemm(int m, int n, int k, float alpha, const float *a, int lda, const float *w, int ldw, float beta,
                  float *c, int ldc);

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);

static sgemm_fn next_sgemm;
static sgemv_fn next_sgemv;

static void resolve(void) {
    if (!next_sgemm) {
        next_sgemv = (sgemv_fn)dlsym(RTLD_NEXT, "cblas_sgemv");
        next_sgemm = (sgemm_fn)dlsym(RTLD_NEXT, "cblas_sgemm");
    }
}

static void clear(float *y, int n, int inc) {
    /* beta == 0 must not read C: MLX hands over uninitialised memory. */
    for (int i = 0; i < n; i++) y[(long)i * inc] = 0.0f;
}

void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc) {
    resolve();
    int simple = order == ROW_MAJOR && (ta == NO_TRANS || ta == TRANS) && (tb == NO_TRANS || tb == TRANS);
    if (order == ROW_MAJOR && ta == NO_TRANS && tb == TRANS && k > 0 && m >= 1 && m <= SMALL_M_ROWS && n >= 1) {
        small_m_gemm(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (next_sgemv && simple && k > 0 && m == 1 && n > 1) {
        /* c (1 x n) = a (1 x k) . op(b) (k x n): c = op(b)^T a. */
        int inca = ta == NO_TRANS ? 1 : lda;
        if (beta == 0.0f) clear(c, n, 1);
        if (tb == NO_TRANS)
            next_sgemv(ROW_MAJOR, TRANS, k, n, alpha, b, ldb, a, inca, beta, c, 1);
        else
            next_sgemv(ROW_MAJOR, NO_TRANS, n, k, alpha, b, ldb, a, inca, beta, c, 1);
        return;
    }
    if (next_sgemv && simple && k > 0 && n == 1 && m > 1) {
        /* c (m x 1) = op(a) (m x k) . b (k x 1). */
        int incb = tb == NO_TRANS ? ldb : 1;
        if (beta == 0.0f) clear(c, m, ldc);
        if (ta == NO_TRANS)
            next_sgemv(ROW_MAJOR, NO_TRANS, m, k, alpha, a, lda, b, incb, beta, c, ldc);
        else
            next_sgemv(ROW_MAJOR, TRANS, k, m, alpha, a, lda, b, incb, beta, c, ldc);
        return;
    }
    next_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
