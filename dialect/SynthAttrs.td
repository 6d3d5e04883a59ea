//===- SynthAttrs.td - enums and attributes of the synth dialect ----------===//
//
// Enums (score kinds, GELU approximation) and attributes (a score part of a
// fused attention, a kernel schedule).
//
//===----------------------------------------------------------------------===//

#ifndef SYNTH_ATTRS_TD
#define SYNTH_ATTRS_TD

include "dialect/SynthBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Synth_ScoreKind : I32EnumAttr<"ScoreKind", "an attention score function", [
    I32EnumAttrCase<"Dot", 0, "dot">,
    I32EnumAttrCase<"Dense", 1, "dense">,
    I32EnumAttrCase<"Random", 2, "random">,
    I32EnumAttrCase<"FactorizedRandom", 3, "factorized_random">,
    I32EnumAttrCase<"FactorizedDense", 4, "factorized_dense">
  ]> {
  let cppNamespace = "::mlir::synth";
  let genSpecializedAttr = 0;
}

def Synth_GeluApproximation : I32EnumAttr<"GeluApproximation",
    "how GELU is evaluated", [
    I32EnumAttrCase<"Erf", 0, "erf">,
    I32EnumAttrCase<"Tanh", 1, "tanh">
  ]> {
  let cppNamespace = "::mlir::synth";
}

//===----------------------------------------------------------------------===//
// Score part: one score function inside a fused attention op.
//===----------------------------------------------------------------------===//

def Synth_ScorePartAttr : Synth_Attr<"ScorePart", "score"> {
  let summary = "one score function of a fused attention op";
  let description = [{
    Names the score function of one part of a `synth.fused_attention` and the
    attributes it needs: `scale` for `dot`, `max_len` (the model's L) for the
    synthesized kinds. The part consumes, in order, the same operands as the
    corresponding standalone score op:

    | kind                | operands                          |
    |---------------------|-----------------------------------|
    | `dot`               | q, k                              |
    | `dense`             | x, W1, b1, W2, b2                 |
    | `random`            | R                                 |
    | `factorized_random` | R1, R2                            |
    | `factorized_dense`  | x, W1, b1, WA, bA, WB, bB         |

    Example: `#synth.score<dot, scale = 1.250000e-01 : f32>`,
    `#synth.score<random, max_len = 256 : i64>`.
  }];
  let parameters = (ins
    "::mlir::synth::ScoreKind":$kind,
    OptionalParameter<"::mlir::FloatAttr">:$scale,
    OptionalParameter<"::mlir::IntegerAttr">:$max_len
  );
  // `<kind (, scale = F)? (, max_len = I)?>`: custom, because two optional
  // groups that both start with `,` are ambiguous to the declarative parser.
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Number of operands this part consumes from the fused op's score operands.
    unsigned getNumOperands() const;
  }];
}

//===----------------------------------------------------------------------===//
// Kernel schedule
//===----------------------------------------------------------------------===//

def Synth_ScheduleAttr : Synth_Attr<"Schedule", "schedule"> {
  let summary = "how one kernel is tiled, vectorized and parallelized, per target";
  let description = [{
    A schedule is data attached to a `synth.kernel`: for each x86 target class
    the kernel is compiled for (`avx512`, `avx2`, `sse41`), a dictionary of
    named fields, each an integer or a string (one of the field's choices).
    Which fields a kernel has, and their ranges, depend on the ops in the
    kernel (passes/CpuSchedule.h, docs/schedules.md); `synth-assign-schedules`
    attaches the defaults and checks them, back ends take every decision from
    them, `synthc --schedule` and `synth-tune` rewrite them.

    Example: `#synth.schedule<{avx2 = {col_vectors = 2, matmul_at = "tile",
    parallel = "outer", parallel_task = 1, reduction_unroll = 1,
    row_block = 6, vector_width = 8}}>`
  }];
  let parameters = (ins "::mlir::DictionaryAttr":$targets);
  let assemblyFormat = "`<` $targets `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The fields for target class `cls`, or null.
    ::mlir::DictionaryAttr getTarget(::llvm::StringRef cls) const;
  }];
}

#endif // SYNTH_ATTRS_TD
