// gemm_abt / gemm_ab on oneDNN's sgemm (MOESLICE_HAVE_ONEDNN), else OpenBLAS
// (MOESLICE_HAVE_OPENBLAS), else Eigen. All take strided row-major views directly, so heads inside
// a [tokens, heads * head_dim] activation need no copy.
#include "kernels/gemm.h"

#include <cassert>
#include <stdexcept>

#if MOESLICE_HAVE_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#elif MOESLICE_HAVE_OPENBLAS
#include <cblas.h>
#else
#define EIGEN_DONT_PARALLELIZE  // the thread pool parallelises; Eigen must not add threads
#include <Eigen/Core>
#endif

namespace moeslice::kernels {
namespace {

#if MOESLICE_HAVE_ONEDNN
dnnl_dim_t to_dnnl(size_t value) { return static_cast<dnnl_dim_t>(value); }

// C = alpha * A * op(B) + beta * C, row-major, on the calling thread.
void onednn_sgemm(char transb, ConstMatrixRef a, ConstMatrixRef b, MatrixRef c, float alpha,
                  float beta) {
  ensure_single_threaded_blas();
  const dnnl_status_t status =
      dnnl_sgemm('N', transb, to_dnnl(c.rows), to_dnnl(c.cols), to_dnnl(a.cols), alpha, a.data,
                 to_dnnl(a.stride), b.data, to_dnnl(b.stride), beta, c.data, to_dnnl(c.stride));
  if (status != dnnl_success) throw std::runtime_error("oneDNN sgemm failed");
}
#elif MOESLICE_HAVE_OPENBLAS
blasint to_blas(size_t value) { return static_cast<blasint>(value); }
#else
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<> >;
using MutableMap = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<> >;

ConstMap eigen_map(ConstMatrixRef m) {
  return {m.data, static_cast<Eigen::Index>(m.rows), static_cast<Eigen::Index>(m.cols),
          Eigen::OuterStride<>(static_cast<Eigen::Index>(m.stride))};
}
MutableMap eigen_map(MatrixRef m) {
  return {m.data, static_cast<Eigen::Index>(m.rows), static_cast<Eigen::Index>(m.cols),
          Eigen::OuterStride<>(static_cast<Eigen::Index>(m.stride))};
}
#endif

// Zero-sized products still have to honour beta (C = beta * C).
void scale_only(MatrixRef c, float beta) {
  for (size_t r = 0; r < c.rows; ++r) {
    float* row = c.row(r);
    for (size_t j = 0; j < c.cols; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
  }
}

}  // namespace

void ensure_single_threaded_blas() {
#if MOESLICE_HAVE_ONEDNN
  // Debian's oneDNN runs on OpenMP: sgemm uses the calling thread's omp_get_max_threads(), the
  // core count on every new thread, so each thread asks for one (the pool runs one GEMM per core).
  thread_local bool done = false;
  if (!done) {
    omp_set_num_threads(1);
    done = true;
  }
#elif MOESLICE_HAVE_OPENBLAS
  // Debian's OpenBLAS is the OpenMP build: its thread count follows the calling thread's OpenMP
  // setting, and every new thread starts at the core count again. So each thread has to set it,
  // or two pool threads would each start an OpenMP team of two (measured: 3 threads on 2 cores).
  thread_local bool done = false;
  if (!done) {
    openblas_set_num_threads(1);
    done = true;
  }
#endif
}

std::string_view gemm_backend() {
#if MOESLICE_HAVE_ONEDNN
  return "onednn";
#elif MOESLICE_HAVE_OPENBLAS
  return "openblas";
#else
  return "eigen";
#endif
}

void gemm_abt(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c, float alpha, float beta) {
  assert(a.cols == b.cols && c.rows == a.rows && c.cols == b.rows);
  if (c.rows == 0 || c.cols == 0) return;
  if (a.cols == 0) return scale_only(c, beta);
#if MOESLICE_HAVE_ONEDNN
  onednn_sgemm('T', a, b, c, alpha, beta);
#elif MOESLICE_HAVE_OPENBLAS
  ensure_single_threaded_blas();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, to_blas(c.rows), to_blas(c.cols),
              to_blas(a.cols), alpha, a.data, to_blas(a.stride), b.data, to_blas(b.stride), beta,
              c.data, to_blas(c.stride));
#else
  auto cm = eigen_map(c);
  if (beta == 0.0f) {
    cm.noalias() = alpha * (eigen_map(a) * eigen_map(b).transpose());
  } else {
    cm *= beta;
    cm.noalias() += alpha * (eigen_map(a) * eigen_map(b).transpose());
  }
#endif
}

void gemm_ab(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c, float alpha, float beta) {
  assert(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols);
  if (c.rows == 0 || c.cols == 0) return;
  if (a.cols == 0) return scale_only(c, beta);
#if MOESLICE_HAVE_ONEDNN
  onednn_sgemm('N', a, b, c, alpha, beta);
#elif MOESLICE_HAVE_OPENBLAS
  ensure_single_threaded_blas();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_blas(c.rows), to_blas(c.cols),
              to_blas(a.cols), alpha, a.data, to_blas(a.stride), b.data, to_blas(b.stride), beta,
              c.data, to_blas(c.stride));
#else
  auto cm = eigen_map(c);
  if (beta == 0.0f) {
    cm.noalias() = alpha * (eigen_map(a) * eigen_map(b));
  } else {
    cm *= beta;
    cm.noalias() += alpha * (eigen_map(a) * eigen_map(b));
  }
#endif
}

}  // namespace moeslice::kernels
