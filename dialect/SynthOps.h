//===- SynthOps.h - ops, attributes and interfaces of synth ---------------===//
//
// The C++ side of SynthOps.td, SynthAttrs.td and SynthInterfaces.td. Only the
// interfaces the ops implement are included here; no back-end headers.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_DIALECT_SYNTHOPS_H
#define SYNTHC_DIALECT_SYNTHOPS_H

#include "dialect/SynthDialect.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/TilingInterface.h"

#include "dialect/SynthEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/SynthAttrs.h.inc"

#include "dialect/SynthInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialect/SynthOps.h.inc"

namespace mlir::synth {
/// Attaches the DifferentiableOpInterface rules of SynthGradients.cpp to the
/// model ops (called when the dialect is loaded).
void registerDifferentiableModels(MLIRContext &context);
} // namespace mlir::synth

#endif // SYNTHC_DIALECT_SYNTHOPS_H
