// The fp32 GEMM every kernel goes through, single-threaded per call: oneDNN's sgemm when the build
// found oneDNN (measured 1.1-2.8x OpenBLAS 0.3.21's best core type and 3.5-5.9x its default on
// this project's Emerald Rapids machine, docs/benchmarks.md), else OpenBLAS sgemm (about 1.6x
// Eigen 3.4 for 512x2048x2048), else Eigen. Parallelism comes from ThreadPool splitting work into
// independent GEMMs, so the BLAS library's own threading is switched off; that also keeps results
// independent of the number of threads (each output element is produced by one call with the same
// shape).
//
// Thread safety: all functions may be called concurrently from any threads.
#pragma once

#include <string_view>

#include "kernels/matrix.h"

namespace moeslice::kernels {

// C = alpha * A * B^T + beta * C, with A [m, k], B [n, k], C [m, n]. beta == 0 ignores C's contents
// (NaN in C does not propagate), as in BLAS.
void gemm_abt(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c, float alpha = 1.0f,
              float beta = 0.0f);

// C = alpha * A * B + beta * C, with A [m, k], B [k, n], C [m, n].
void gemm_ab(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c, float alpha = 1.0f,
             float beta = 0.0f);

// "onednn", "openblas" or "eigen".
std::string_view gemm_backend();

// Makes the BLAS library run calls from the calling thread on that thread only. Cheap after the
// first call on a thread; gemm_abt/gemm_ab and ThreadPool call it themselves.
void ensure_single_threaded_blas();

}  // namespace moeslice::kernels
