//===- SynthBase.td - the synth dialect and its type constraints ---------===//
//
// The `synth` dialect: tensor-level ops for Transformer and Synthesizer models
// (Tay et al., "Synthesizer: Rethinking Self-Attention in Transformer Models").
// This file declares the dialect and the type constraints its ops share.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTH_BASE_TD
#define SYNTH_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Synth_Dialect : Dialect {
  let name = "synth";
  let cppNamespace = "::mlir::synth";
  let summary = "Transformer and Synthesizer attention models at the tensor level";
  let description = [{
    The `synth` dialect describes a Transformer or Synthesizer model at the
    level of whole tensors: embeddings, linear layers, normalization, the score
    functions of every attention variant of the Synthesizer paper (dot-product,
    dense, random, factorized random, factorized dense and their mixtures),
    `attend` (masked softmax times values), the fused attention op that fusion
    produces, the AdamW update, and kernel regions that become one generated
    kernel each.

    Conventions shared by all ops:
    - Tensors are ranked; floating-point operands of one op share one element
      type among f32, bf16 and f16. Token ids are i32 or i64; masks are i1.
    - Activations are `[batch, seq, d_model]`; per-head tensors are
      `[batch, heads, seq, head_dim]`; scores are `[batch, heads, N, M]`, or
      `[heads, N, M]` when they do not depend on the input (random and
      factorized random), in which case they broadcast over the batch.
    - Masks are never N x N tensors: causal masking is a unit attribute and
      padding is a `[batch, M]` key mask (true = real token).
  }];
  // Tiling the fused attention creates tensor slices and index arithmetic.
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
  let useDefaultAttributePrinterParser = 1;
  let hasCanonicalizer = 0;
}

class Synth_Op<string mnemonic, list<Trait> traits = []>
    : Op<Synth_Dialect, mnemonic, traits>;

class Synth_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Synth_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Synth_Float : AnyTypeOf<[F32, BF16, F16], "f32, bf16 or f16">;
def Synth_FloatTensor : RankedTensorOf<[F32, BF16, F16]>;
def Synth_F32Tensor : RankedTensorOf<[F32]>;
def Synth_IdTensor : RankedTensorOf<[I32, I64]>;
def Synth_MaskTensor : RankedTensorOf<[I1]>;
def Synth_F32Scalar : 0DTensorOf<[F32]>;
def Synth_StepScalar : 0DTensorOf<[I32, I64]>;

#endif // SYNTH_BASE_TD
