//===- ModelBuilder.h - model description -> synth IR ---------------------===//
//
// Builds the synth IR of a model description: a module with a `forward`
// function (inputs, then parameters -> logits) and a `loss` function (inputs,
// targets, then parameters -> mean cross-entropy), as documented in
// docs/model-format.md.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_FRONTEND_MODELBUILDER_H
#define SYNTHC_FRONTEND_MODELBUILDER_H

#include "frontend/ModelConfig.h"

#include "absl/status/statusor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace synth {

/// The static shapes the functions are built for.
struct ShapeOptions {
  int64_t batch = 1;
  /// lm and encoder: N; 0 means max_len.
  int64_t seqLen = 0;
  /// seq2seq: source S and target T lengths; 0 means seqLen.
  int64_t srcLen = 0;
  int64_t tgtLen = 0;
};

/// Builds and verifies the module. Errors (such as a sequence longer than
/// max_len) name the option and the limit.
absl::StatusOr<mlir::OwningOpRef<mlir::ModuleOp>>
buildModelModule(mlir::MLIRContext &context, const ModelConfig &config,
                 const ShapeOptions &shapes);

/// The synth dialect and the upstream dialects the module uses, for tools
/// that create their own context.
void registerModelDialects(mlir::MLIRContext &context);

} // namespace synth

#endif // SYNTHC_FRONTEND_MODELBUILDER_H
