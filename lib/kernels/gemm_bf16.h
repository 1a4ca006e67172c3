// BF16 GEMM for `--compute bf16`: BF16 operands, fp32 accumulation, fp32 output, on oneDNN's
// matmul primitive (brgemm with AVX-512 BF16 where the CPU has it) when the build found oneDNN
// (MOESLICE_HAVE_ONEDNN). A Linear weight [out, in] stored as BF16 in the mapped checkpoint is
// used in place: oneDNN reads it as the transposed [in, out] operand through strides, no copy.
//
// Threading: every call runs single-threaded on the calling thread (oneDNN's OpenMP team is cut
// to one thread per calling thread); parallelism comes from ThreadPool splitting work into
// independent GEMMs of fixed shapes, as for the fp32 GEMM (gemm.h). Results therefore do not
// depend on the thread count.
//
// Primitives are created once per shape (m, n, k, strides) and cached for the process (the 1024
// most recently used); oneDNN picks a kernel per exact shape, which measured faster than one
// runtime-M primitive (its runtime-dimension matmul is the slower gemm:jit, not brgemm).
//
// The BF16 conversions that feed it are in kernels/bf16.h.
//
// Thread safety: all functions may be called concurrently from any threads.
#pragma once

#include <string>

#include "kernels/matrix.h"

namespace moeslice::kernels {

// True when the build has a BF16 GEMM (oneDNN).
bool bf16_gemm_available();
// "oneDNN 2.6.3" or "none".
std::string bf16_gemm_backend();
// Throws UnsupportedError naming the missing library when bf16_gemm_available() is false, or
// when oneDNN has only its (very slow) reference bf16 kernels on this CPU.
void require_bf16_gemm();

// C [m, n] = A [m, k] * B^T with B [n, k] (a Linear weight [out, in], read in place). A dense C
// (stride == n) is markedly faster in oneDNN 2.6 than a strided one.
void gemm_bf16_abt(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c);
// C [m, n] = A [m, k] * B with B [k, n].
void gemm_bf16_ab(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c);

}  // namespace moeslice::kernels
