//===- CudaArtifact.h - kernels of a module -> a CUDA artifact ------------===//
//
// The CUDA back end's driver: takes a module after the synth-cpu-kernels
// pipeline (kernels + memory plan), lowers every kernel to PTX (and cubin when
// the toolkit's ptxas is found), and writes the artifact directory of
// docs/artifact-format.md with target kind "cuda" and the launch
// configuration of every kernel under the manifest's "cuda" key
// (docs/cuda-backend.md).
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_CODEGEN_CUDA_CUDAARTIFACT_H
#define SYNTHC_CODEGEN_CUDA_CUDAARTIFACT_H

#include "codegen/cuda/CudaCodegen.h"
#include "frontend/Parameters.h"
#include "runtime/Json.h"

#include "absl/status/status.h"

#include <string>

namespace synth::cuda {

struct CudaArtifactOptions {
  /// Output directory (created; existing files in it are replaced).
  std::string output;
  CudaTarget target;
  /// The model description, verbatim, for the manifest.
  json::Value model;
  /// Require a cubin for every kernel (fail without ptxas) instead of
  /// writing PTX only.
  bool requireCubin = false;
  /// Assemble cubins when ptxas is found (false: PTX only, which the driver
  /// compiles at load time).
  bool writeCubin = true;
};

/// Writes the artifact: per kernel <name>.ptx (and <name>.cubin), the
/// weights, and manifest.json. Errors name the kernel, file or tool.
absl::Status writeCudaArtifact(mlir::ModuleOp module,
                               const std::vector<ParamInfo> &table,
                               uint64_t seed,
                               const CudaArtifactOptions &options);

} // namespace synth::cuda

#endif // SYNTHC_CODEGEN_CUDA_CUDAARTIFACT_H
