/* linalg.h - the one place BLAS is called: shape-checked matrix products. */
#ifndef SL_LINALG_H
#define SL_LINALG_H

#include <stddef.h>

#include "common/err.h"

/* A row-major, contiguous matrix view: rows x cols floats. Borrowed. */
typedef struct sl_mat {
    const float *data;
    size_t rows, cols;
} sl_mat_t;

/* Sets how many threads OpenBLAS uses (n >= 1). The CLI sets 1 by default:
 * one worker per core scales better than threads inside small products. */
void sl_linalg_set_threads(int n);

/* c = alpha * op(a) * op(b) + beta * c, where op transposes when trans_a /
 * trans_b is set. c is rows x cols row-major, contiguous. Checks that the
 * inner dimensions agree and that c has the product's shape (SL_ERR_MISMATCH)
 * and that every size fits BLAS's int (SL_ERR_RANGE); on error c is untouched.
 * Empty products are fine: with k == 0, c = beta * c. */
sl_err_t sl_linalg_gemm(int trans_a, sl_mat_t a, int trans_b, sl_mat_t b, float alpha, float beta,
                        float *c, size_t c_rows, size_t c_cols);

#endif
