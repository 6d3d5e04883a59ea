//===- CudaCodegen.h - synth kernels -> gpu -> NVVM -> PTX / cubin --------===//
//
// The CUDA back end's stages, each a function so that synthc can stop after
// any of them (--emit=gpu|nvvm|ptx) and tests can check each one:
//   1. lowerKernelsToGpu  synth.kernel -> gpu.module + gpu.func (scf, arith,
//                         math, memref; explicit block/thread mapping)
//   2. lowerGpuToNvvm     gpu/scf/arith/math/memref -> NVVM + LLVM dialects
//   3. translateToPtx     NVVM -> PTX per kernel (gpu-module-to-binary, isa)
//   4. assembleCubin      PTX -> cubin with the toolkit's ptxas
// The pipelines themselves are spelled out in CudaPipelines.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_CODEGEN_CUDA_CUDACODEGEN_H
#define SYNTHC_CODEGEN_CUDA_CUDACODEGEN_H

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace mlir {
class MLIRContext;
} // namespace mlir

namespace synth::cuda {

/// What to generate code for.
struct CudaTarget {
  /// "sm_80" or "sm_90a".
  std::string arch = "sm_90a";
  /// The CUDA toolkit root (libdevice, ptxas); empty: $CUDA_HOME, then the
  /// toolkit found at configure time, then /usr/local/cuda.
  std::string toolkit;
  /// Precision of the matmul-shaped kernels (linear): "f32" (the default, the
  /// checking path: CUDA-core FMAs), "bf16" or "f16" (tiles rounded to 16-bit,
  /// tensor cores: nvgpu.mma.sync m16n8k16 with f32 accumulators, sm_80+).
  std::string precision = "f32";
};

/// How one generated kernel is launched (one gpu.func per synth.kernel).
struct LaunchInfo {
  std::string name;
  std::array<int64_t, 3> grid = {1, 1, 1};
  std::array<int64_t, 3> block = {1, 1, 1};
  /// Static shared memory of the kernel (bytes); no dynamic shared memory.
  int64_t sharedBytes = 0;
  /// The anchor op ("linear", "fused_attention", ...).
  std::string anchor;
};

/// The archs the back end accepts, for messages: "sm_80, sm_90a".
const char *supportedArchs();
bool isSupportedArch(const std::string &arch);

/// The precisions of CudaTarget::precision, for messages: "f32, bf16, f16".
const char *supportedPrecisions();
bool isSupportedPrecision(const std::string &precision);

/// Whether the back end compiles entry function `name`: `forward` and `loss`.
/// Decoding with a cache (`decode`: to_index, cache_update, slice_rows,
/// query offsets) is not implemented yet; its functions are skipped.
bool isCudaEntry(const std::string &name);

/// Loads every dialect and interface the CUDA stages need into `context`.
void registerCudaDialects(mlir::MLIRContext &context);

/// Stage 1: a new module (gpu.container_module) with, per synth.kernel of
/// `kernels` (the output of the synth-cpu-kernels pipeline), one gpu.module
/// holding one kernel gpu.func, both named after the kernel, in program order;
/// `launches` receives each kernel's launch configuration. Fails, naming the
/// kernel and op, on what the back end does not implement. `precision` (see
/// CudaTarget::precision) selects the linear kernels' tensor-core variant.
absl::StatusOr<mlir::OwningOpRef<mlir::ModuleOp>>
lowerKernelsToGpu(mlir::ModuleOp kernels, std::vector<LaunchInfo> *launches,
                  const std::string &precision = "f32");

/// Stage 2, in place: gpu.module contents -> NVVM/LLVM dialect, with the
/// nvvm target (arch, PTX version, libdevice) attached. bf16 nvgpu.mma.sync
/// ops are first rewritten to nvvm.mma.sync (upstream's nvgpu-to-nvvm only
/// types f16/tf32/int operands), the rest of nvgpu by convert-nvgpu-to-nvvm.
absl::Status lowerGpuToNvvm(mlir::ModuleOp module, const CudaTarget &target);

/// Stage 3: PTX text of every gpu.module of an NVVM-stage module, as
/// (module name, PTX) pairs.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
translateToPtx(mlir::ModuleOp module, const CudaTarget &target);

/// Stage 4: assembles PTX with ptxas into a cubin; `log` receives ptxas -v
/// output. NotFound when the toolkit has no ptxas.
absl::StatusOr<std::string> assembleCubin(const std::string &ptx,
                                          const CudaTarget &target,
                                          std::string *log);

/// The toolkit root chosen for `target` (see CudaTarget::toolkit); empty when
/// none is found.
std::string findToolkit(const CudaTarget &target);

/// The text of one stage for synthc --emit: "gpu", "nvvm" or "ptx" (each
/// kernel's PTX preceded by "// kernel <name>").
absl::StatusOr<std::string> emitCudaStage(mlir::ModuleOp kernels,
                                          const std::string &stage,
                                          const CudaTarget &target);

} // namespace synth::cuda

#endif // SYNTHC_CODEGEN_CUDA_CUDACODEGEN_H
