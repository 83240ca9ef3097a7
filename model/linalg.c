/* linalg.c - shape-checked wrappers over OpenBLAS's cblas_sgemm. */

#include "linalg.h"

#include <cblas.h>
#include <limits.h>

void sl_linalg_set_threads(int n) {
    openblas_set_num_threads(n < 1 ? 1 : n);
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
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a.data,
                (int)(a.cols ? a.cols : 1), b.data, (int)(b.cols ? b.cols : 1), beta, c, (int)n);
    return SL_OK;
}
