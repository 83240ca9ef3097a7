/* linalg.c - shape-checked wrappers over OpenBLAS's cblas_sgemm (and sgemv for vector shapes). */

#include "linalg.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

void sl_linalg_set_threads(int n) {
    openblas_set_num_threads(n < 1 ? 1 : n);
}

/* The product when c is a single column (c_cols 1) or a single row
 * (c_rows 1): a matrix times a vector. sgemm packs both operands before it
 * multiplies, which at these shapes (a batch of rows times one output's
 * weights, and back) costs more than the product; sgemv reads them in place.
 * The vector operand has stride 1 in every case: a one-column row-major
 * matrix is contiguous. */
static void gemv(int trans_a, sl_mat_t a, int trans_b, sl_mat_t b, float alpha, float beta,
                 float *c, size_t m, size_t n, size_t k) {
    if (beta == 0.0f) /* BLAS scales c by beta first: clear it so old NaNs do not survive */
        memset(c, 0, m * n * sizeof(float));
    if (n == 1) /* c = op(a) b */
        cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, (int)(trans_a ? k : m),
                    (int)(trans_a ? m : k), alpha, a.data, (int)a.cols, b.data, 1, beta, c, 1);
    else /* m == 1: c^T = op(b)^T a^T */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, (int)(trans_b ? n : k),
                    (int)(trans_b ? k : n), alpha, b.data, (int)b.cols, a.data, 1, beta, c, 1);
}

sl_err_t sl_linalg_gemm(int trans_a, sl_mat_t a, int trans_b, sl_mat_t b, float alpha, float beta,
                        float *c, size_t c_rows, size_t c_cols) {
    size_t m = trans_a ? a.cols : a.rows;
    size_t k = trans_a ? a.rows : a.cols;
    size_t kb = trans_b ? b.cols : b.rows;
    size_t n = trans_b ? b.rows : b.cols;
    if (k != kb || m != c_rows || n != c_cols)
        return SL_ERR_MISMATCH;
    if (a.rows > INT_MAX || a.cols > INT_MAX || b.rows > INT_MAX || b.cols > INT_MAX)
        return SL_ERR_RANGE;
    if (m == 0 || n == 0)
        return SL_OK;
    if (k == 0) {
        for (size_t i = 0; i < m * n; i++)
            c[i] = beta == 0.0f ? 0.0f : beta * c[i];
        return SL_OK;
    }
    if (m == 1 || n == 1) {
        gemv(trans_a, a, trans_b, b, alpha, beta, c, m, n, k);
        return SL_OK;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a.data,
                (int)(a.cols ? a.cols : 1), b.data, (int)(b.cols ? b.cols : 1), beta, c, (int)n);
    return SL_OK;
}
