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
  let summary = "how one kernel is tiled, vectorized and parallelized";
  let description = [{
    A schedule is data attached to a `synth.kernel`: the tile size of every
    loop of the kernel's iteration space (0 = not tiled), the vector width in
    elements of the innermost loop, and which loops run in parallel. Back ends
    read it; `synth-tune` searches over it.

    Example: `#synth.schedule<tile_sizes = [1, 1, 64], vector_width = 16,
    parallel_dims = [0, 1]>`
  }];
  let parameters = (ins
    ArrayRefParameter<"int64_t", "tile size per loop (0 = untiled)">:$tile_sizes,
    "int64_t":$vector_width,
    ArrayRefParameter<"int64_t", "loops run in parallel">:$parallel_dims
  );
  // `<tile_sizes = [..], vector_width = N, parallel_dims = [..]>`, keys in any
  // order; omitted keys default to no tiling, width 1, no parallel loops.
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

#endif // SYNTH_ATTRS_TD
