//===- synth-opt.cpp - run any pass of synthc or upstream MLIR ------------===//
//
// MlirOptMain with the synth dialect and the upstream dialects, extensions and
// passes that synthc's lowering stages use (func, arith, math, linalg, tensor,
// memref, bufferization, scf, vector, gpu, nvgpu, nvvm, llvm, transform, ...).
//
// Upstream registration goes through libMLIR's registerAll* functions rather
// than naming each dialect here: they are compiled into libMLIR.so, so this
// file includes no dialect headers (NVVMDialect.h alone costs ~18 s of compile
// time per translation unit) and the set can never lag behind what the
// lowering pipelines need.
//
//===----------------------------------------------------------------------===//

#include "dialect/SynthDialect.h"
#include "passes/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::synth::registerSynthPassesAndPipelines();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<mlir::synth::SynthDialect>();

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "synthc optimizer driver: synth dialect and upstream MLIR\n",
      registry));
}
