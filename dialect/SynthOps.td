//===- SynthOps.td - ops of the synth dialect -----------------------------===//
//
// Every op of the model language: model ops (embedding, linear, layer_norm,
// activations, residual add, head split/merge, cross-entropy), one score op per
// attention variant of the Synthesizer paper, `attend`, the fused attention op,
// the AdamW update, and kernel regions. Shapes are checked by verifiers in
// SynthOps.cpp whose messages name the operand, the expected shape and the
// actual one.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTH_OPS_TD
#define SYNTH_OPS_TD

include "dialect/SynthBase.td"
include "dialect/SynthAttrs.td"
include "dialect/SynthInterfaces.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/TilingInterface.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

def Synth_EmbeddingOp : Synth_Op<"embedding", [Pure]> {
  let summary = "token embedding lookup";
  let description = [{
    Gathers rows of `table` ([vocab, d_model]) for every token id. The result
    has the shape of `ids` followed by d_model. Ids outside [0, vocab) are a
    run-time error reported by the back ends.

    Example:
    ```mlir
    %h = synth.embedding %table[%ids]
        : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$table, Synth_IdTensor:$ids);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` attr-dict `:` type($table) `,` type($ids) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Synth_LinearOp : Synth_Op<"linear", [Pure]> {
  let summary = "affine map over the last dimension: x W (+ b)";
  let description = [{
    Computes `x W + b` over the last dimension of `x` ([..., in]) with `W` of
    shape [in, out] and an optional bias of shape [out]. The result is
    [..., out]. With `transpose_weight`, `W` is [out, in] and the op computes
    `x W^T + b` (tied input/output embeddings use the [vocab, d_model]
    embedding table this way).

    Example:
    ```mlir
    %y = synth.linear %x, %w bias %b
        : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256xf32>)
        -> tensor<2x16x256xf32>
    %logits = synth.linear %h, %table {transpose_weight}
        : (tensor<2x16x64xf32>, tensor<256x64xf32>) -> tensor<2x16x256xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$weight,
                       Optional<Synth_FloatTensor>:$bias,
                       UnitAttr:$transpose_weight);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Synth_LayerNormOp : Synth_Op<"layer_norm", [Pure]> {
  let summary = "layer normalization over the last dimension";
  let description = [{
    `(x - mean) / sqrt(var + epsilon) * gamma + beta` over the last dimension of
    `x`, with the biased variance (as PyTorch's `LayerNorm`). `gamma` and `beta`
    have the shape [d] of that dimension.

    Example:
    ```mlir
    %y = synth.layer_norm %x, %gamma, %beta {epsilon = 1.0e-05 : f32}
        : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$gamma,
                       Synth_FloatTensor:$beta,
                       DefaultValuedAttr<F32Attr, "1.0e-05">:$epsilon);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

class Synth_UnaryElementwiseOp<string mnemonic, list<Trait> traits = []>
    : Synth_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsAndResultType])> {
  let arguments = (ins Synth_FloatTensor:$input);
  let results = (outs Synth_FloatTensor:$result);
}

def Synth_ReluOp : Synth_UnaryElementwiseOp<"relu"> {
  let summary = "rectified linear unit, max(x, 0)";
  let description = [{
    Elementwise `max(x, 0)`. Idempotent: `relu(relu(x))` folds to `relu(x)`.

    Example:
    ```mlir
    %y = synth.relu %x : tensor<2x16x256xf32>
    ```
  }];
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasFolder = 1;
}

def Synth_GeluOp : Synth_UnaryElementwiseOp<"gelu"> {
  let summary = "Gaussian error linear unit";
  let description = [{
    Elementwise `x * Phi(x)`, exactly with erf (the default, as PyTorch's
    `GELU()`) or with the tanh approximation.

    Example:
    ```mlir
    %y = synth.gelu %x approximation = tanh : tensor<2x16x256xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input,
      DefaultValuedAttr<Synth_GeluApproximation,
                        "::mlir::synth::GeluApproximation::Erf">:$approximation);
  let assemblyFormat = [{
    $input (`approximation` `=` $approximation^)? attr-dict `:` type($input)
  }];
}

def Synth_AddOp : Synth_Op<"add", [Pure, Commutative, SameOperandsAndResultType]> {
  let summary = "elementwise sum (residual connection)";
  let description = [{
    Example:
    ```mlir
    %y = synth.add %x, %attn : tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$lhs, Synth_FloatTensor:$rhs);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Synth_SplitHeadsOp : Synth_Op<"split_heads", [Pure]> {
  let summary = "[batch, seq, H * d] -> [batch, H, seq, d]";
  let description = [{
    Splits the model dimension into heads; the number of heads is the result's
    dimension 1. `split_heads(merge_heads(x))` folds to `x`.

    Example:
    ```mlir
    %q = synth.split_heads %x : tensor<2x16x64xf32> -> tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Synth_MergeHeadsOp : Synth_Op<"merge_heads", [Pure]> {
  let summary = "[batch, H, seq, d] -> [batch, seq, H * d]";
  let description = [{
    Concatenates the heads back into the model dimension (the inverse of
    `split_heads`). `merge_heads(split_heads(x))` folds to `x`.

    Example:
    ```mlir
    %y = synth.merge_heads %o : tensor<2x4x16x16xf32> -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Synth_AddPositionsOp : Synth_Op<"add_positions", [Pure]> {
  let summary = "adds learned absolute position embeddings: x + table[offset:offset+N]";
  let description = [{
    `x` is [batch, N, d_model] and `table` the position table [L, d_model];
    the result adds row `offset + i` of the table to token i of every
    sequence. `offset` (an index, default 0) is the absolute position of the
    first token, for decoding with a cache. N > L is a verifier error; an
    offset that runs past L is a run-time error of the back ends.

    Example:
    ```mlir
    %h = synth.add_positions %x, %pos : (tensor<2x16x64xf32>, tensor<32x64xf32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$table,
                       Optional<Index>:$offset);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $table (`offset` $offset^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Synth_MeanPoolOp : Synth_Op<"mean_pool", [Pure]> {
  let summary = "mean over the real (unmasked) tokens of each sequence";
  let description = [{
    `x` is [batch, N, d] and `mask` [batch, N] (true = real token); the result
    [batch, d] is `sum_i mask_i x_i / max(1, sum_i mask_i)`, so a sequence of
    padding only pools to zeros.

    Example:
    ```mlir
    %p = synth.mean_pool %x, %mask : (tensor<2x16x64xf32>, tensor<2x16xi1>) -> tensor<2x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_MaskTensor:$mask);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $mask attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Synth_CrossEntropyOp : Synth_Op<"cross_entropy", [Pure]> {
  let summary = "mean softmax cross-entropy over targets that are not ignored";
  let description = [{
    `logits` are [..., vocab], `targets` the leading shape [...] of token ids.
    The result is the mean over positions whose target differs from
    `ignore_index` (padding) of `logsumexp(logits) - logits[target]`, as an f32
    scalar; it is 0 when every target is ignored.

    Example:
    ```mlir
    %loss = synth.cross_entropy %logits, %targets {ignore_index = -1 : i64}
        : (tensor<2x16x256xf32>, tensor<2x16xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$logits, Synth_IdTensor:$targets,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs Synth_F32Scalar:$result);
  let assemblyFormat = [{
    $logits `,` $targets attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Score ops: one per attention variant of the Synthesizer paper.
// Results are [batch, heads, N, M] scores, or [heads, N, N] for the variants
// that do not read the input (they broadcast over the batch in `attend`).
//===----------------------------------------------------------------------===//

def Synth_DotScoresOp : Synth_Op<"dot_scores", [Pure]> {
  let summary = "dot-product scores: q k^T * scale (vanilla attention)";
  let description = [{
    `q` is [batch, heads, N, d] and `k` [batch, heads, M, d]; the result is
    [batch, heads, N, M] with `S = q k^T * scale`. `scale` defaults to
    `1 / sqrt(d)` when absent. M may differ from N (cross-attention, decoding
    with a cache).

    Example:
    ```mlir
    %s = synth.dot_scores %q, %k {scale = 2.500000e-01 : f32}
        : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$q, Synth_FloatTensor:$k,
                       OptionalAttr<F32Attr>:$scale);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$q `,` $k attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The scale actually applied: the attribute, or 1 / sqrt(head_dim).
    double getEffectiveScale();
  }];
}

def Synth_DenseScoresOp : Synth_Op<"dense_scores", [Pure]> {
  let summary = "dense synthesizer scores: relu(x W1 + b1) W2 + b2, per head";
  let description = [{
    Dense Synthesizer: for each head h, row i of the scores is
    `F_h(x_i) = relu(x_i W1_h + b1_h) W2_h + b2_h`, sliced to its first N
    columns. It depends on token i alone, never on token-token interaction.
    Shapes: x [batch, N, d_model], W1 [heads, d_model, k], b1 [heads, k],
    W2 [heads, k, L], b2 [heads, L], with `max_len` = L >= N.
    The result is [batch, heads, N, N].

    Example:
    ```mlir
    %s = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 32 : i64}
        : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>,
           tensor<4x16x32xf32>, tensor<4x32xf32>) -> tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$w1,
                       Synth_FloatTensor:$b1, Synth_FloatTensor:$w2,
                       Synth_FloatTensor:$b2, I64Attr:$max_len);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $w1 `,` $b1 `,` $w2 `,` $b2 attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Synth_RandomScoresOp : Synth_Op<"random_scores", [Pure]> {
  let summary = "random synthesizer scores: R[0:N, 0:N] per head";
  let description = [{
    Random Synthesizer: the scores are a learned (or, with
    `trainable = false`, frozen-at-initialization) matrix R of shape
    [heads, L, L], independent of the input, sliced to the sequence length N.
    The result is [heads, N, N] and broadcasts over the batch. Because it does
    not depend on the input, `softmax(R + M)` can be computed once per
    inference and R's gradient sums over the batch.

    Example:
    ```mlir
    %s = synth.random_scores %r {max_len = 32 : i64, trainable = false}
        : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$r, I64Attr:$max_len,
                       DefaultValuedAttr<BoolAttr, "true">:$trainable);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$r attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_FactorizedRandomScoresOp : Synth_Op<"factorized_random_scores", [Pure]> {
  let summary = "factorized random scores: (R1 R2^T)[0:N, 0:N] per head";
  let description = [{
    A rank-r random score matrix per head: R1 and R2 are [heads, L, r] and the
    scores are `R1_h R2_h^T` sliced to [N, N]. Like random scores it does not
    read the input; the result is [heads, N, N].

    Example:
    ```mlir
    %s = synth.factorized_random_scores %r1, %r2 {max_len = 32 : i64}
        : (tensor<4x32x8xf32>, tensor<4x32x8xf32>) -> tensor<4x16x16xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$r1, Synth_FloatTensor:$r2,
                       I64Attr:$max_len);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$r1 `,` $r2 attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_FactorizedDenseScoresOp : Synth_Op<"factorized_dense_scores", [Pure]> {
  let summary = "factorized dense scores: outer product of two small dense heads";
  let description = [{
    For each head and token i: `h_i = relu(x_i W1 + b1)` (W1 [heads, d_model, k],
    b1 [heads, k]), `A_i = h_i WA + bA` in R^a, `B_i = h_i WB + bB` in R^b,
    and row i of the scores is `C_i[p * b + q] = A_i[p] * B_i[q]`, of length
    a * b = L (`max_len`), sliced to N columns. The result is
    [batch, heads, N, N].

    Example:
    ```mlir
    %s = synth.factorized_dense_scores %x, %w1, %b1, %wa, %ba, %wb, %bb {max_len = 32 : i64}
        : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>,
           tensor<4x16x8xf32>, tensor<4x8xf32>, tensor<4x16x4xf32>,
           tensor<4x4xf32>) -> tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$w1,
                       Synth_FloatTensor:$b1, Synth_FloatTensor:$wa,
                       Synth_FloatTensor:$ba, Synth_FloatTensor:$wb,
                       Synth_FloatTensor:$bb, I64Attr:$max_len);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $w1 `,` $b1 `,` $wa `,` $ba `,` $wb `,` $bb attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Synth_MixtureScoresOp : Synth_Op<"mixture_scores", [Pure]> {
  let summary = "learned mixture of score functions: sum_m softmax(a_h)_m S_m";
  let description = [{
    Mixes the logits of m score functions before one softmax:
    `S_h = sum_m alpha_{h,m} S_{h,m}` with `alpha_h = softmax(a_h)` and
    `logits` a of shape [heads, m] (initialized to 0). Parts may be
    [batch, heads, N, M] or batch-independent [heads, N, M]; the result is
    batched when any part is. A mixture of one part folds to that part
    (softmax over one logit is 1).

    Example (Random + Vanilla):
    ```mlir
    %s = synth.mixture_scores (%sr, %sd) logits %a
        : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x2xf32>)
        -> tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Variadic<Synth_FloatTensor>:$parts,
                       Synth_FloatTensor:$logits);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    `(` $parts `)` `logits` $logits attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def Synth_AttendOp : Synth_Op<"attend", [Pure, AttrSizedOperandSegments]> {
  let summary = "softmax(scores + mask) @ values";
  let description = [{
    Normalizes the scores over keys and mixes the values:
    `out[b,h,i] = sum_j softmax_j(S[b,h,i,j] + mask(b,i,j)) v[b,h,j]`.
    `scores` are [batch, heads, N, M] or [heads, N, M] (broadcast over the
    batch); `values` are [batch, heads, M, d]; the result is [batch, heads, N, d].

    The mask is never a tensor of scores' size:
    - `causal`: query i (at absolute position `query_offset + i`; the offset
      defaults to 0) sees keys j <= query_offset + i;
    - `key_mask` ([batch, M], i1, true = real token) hides padding keys.
    A row whose keys are all masked yields zeros.

    Example:
    ```mlir
    %o = synth.attend %s, %v key_mask %m {causal}
        : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x16xi1>)
        -> tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$scores, Synth_FloatTensor:$values,
                       Optional<Synth_MaskTensor>:$key_mask,
                       Optional<Index>:$query_offset, UnitAttr:$causal);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $scores `,` $values (`key_mask` $key_mask^)? (`query_offset` $query_offset^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Synth_AttentionProbsOp : Synth_Op<"attention_probs", [Pure]> {
  let summary = "softmax(R[0:N, 0:N] + mask) of a fixed random matrix";
  let description = [{
    The attention weights of fixed random attention, `softmax_j(R_h[i, j] +
    M[i, j])` with M causal or zero: they depend on nothing but R, so the
    back end computes them once per binding of the parameters (a `once`
    call of the plan, docs/artifact-format.md) instead of on every run.
    `synth-fuse-attention` produces this op with `attend_probs` for fixed
    random attention without padding mask.

    Example:
    ```mlir
    %p = synth.attention_probs %r {max_len = 256 : i64, causal}
        : (tensor<4x256x256xf32>) -> tensor<4x16x16xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$r, I64Attr:$max_len,
                       UnitAttr:$causal);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$r attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_AttendProbsOp : Synth_Op<"attend_probs", [Pure]> {
  let summary = "attention with given weights: P @ values";
  let description = [{
    `probs` are attention weights [heads, N, M] shared by the batch (rows sum
    to one, masks already applied) and `values` [batch, heads, M, d]; the
    result is [batch, heads, N, d]. With `transpose_probs` the op computes
    `P^T @ values` ([batch, heads, M, d] from [batch, heads, N, d]): the
    gradient of the values.

    Example:
    ```mlir
    %o = synth.attend_probs %p, %v : (tensor<4x16x16xf32>, tensor<2x4x16x64xf32>) -> tensor<2x4x16x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$probs, Synth_FloatTensor:$values,
                       UnitAttr:$transpose_probs);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$probs `,` $values attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_FusedAttentionOp : Synth_Op<"fused_attention", [
    Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<TilingInterface, [
      "getIterationDomain", "getLoopIteratorTypes", "getTiledImplementation",
      "getResultTilePosition", "generateResultTileValue"]>]> {
  let summary = "score function + mask + online softmax + value product, in one op";
  let description = [{
    What `fuse-attention` makes of score ops followed by `attend`: one op that
    computes the scores of every part of `score_parts` (operands taken in
    order from `score_operands`, see `#synth.score`), mixes them with
    `softmax(mixture_logits)` when there is more than one part, applies the
    causal and padding masks, and returns `softmax(S + M) @ values` without
    ever materializing an N x N tensor (back ends stream over key tiles with a
    running max and sum).

    The op is tileable over [batch, heads, queries] (upstream
    `TilingInterface`): a tile slices the query-indexed operands (q, the rows of
    x, R and R1) and keeps the key-indexed ones whole; `query_offset` carries the
    tile's first absolute query position for the causal mask. Query-indexed
    operands therefore need at least N rows and key-indexed ones at least M;
    for synthesized parts `max_len` = L bounds M.

    Example (Random + Vanilla, causal):
    ```mlir
    %o = synth.fused_attention
        [#synth.score<random, max_len = 16 : i64>, #synth.score<dot>]
        (%r, %q, %k) logits %a values %v {causal}
        : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>,
           tensor<4x2xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins
    TypedArrayAttrBase<Synth_ScorePartAttr, "score parts">:$score_parts,
    Variadic<Synth_FloatTensor>:$score_operands,
    Optional<Synth_FloatTensor>:$mixture_logits,
    Synth_FloatTensor:$values,
    Optional<Synth_MaskTensor>:$key_mask,
    Optional<Index>:$query_offset,
    UnitAttr:$causal);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $score_parts `(` $score_operands `)` (`logits` $mixture_logits^)?
    `values` $values (`key_mask` $key_mask^)? (`query_offset` $query_offset^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The operands of score part `index`, in the order of its standalone op.
    ::mlir::OperandRange getPartOperands(unsigned index);
  }];
}

//===----------------------------------------------------------------------===//
// Decoding with a cache
//===----------------------------------------------------------------------===//

def Synth_ToIndexOp : Synth_Op<"to_index", [Pure]> {
  let summary = "a position given as a scalar i32 tensor, as an index";
  let description = [{
    Positions arrive at run time as scalar tensors (every entry input is a
    buffer); ops that take a position (`add_positions`, `slice_rows`,
    `cache_update`, the attention ops' `query_offset`) take an index. Kernel
    formation copies this op into every kernel that needs the position.

    Example:
    ```mlir
    %p = synth.to_index %position : tensor<i32>
    ```
  }];
  let arguments = (ins 0DTensorOf<[I32]>:$input);
  let results = (outs Index:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Synth_SliceRowsOp : Synth_Op<"slice_rows", [Pure]> {
  let summary = "rows [offset, offset + n) of a per-head matrix";
  let description = [{
    `input` is [heads, L, c]; the result [heads, n, c] holds rows
    `offset .. offset + n - 1` of each head. Decoding uses it to hand the
    query-indexed parameters of the synthesized scores (R, R1) for the current
    position to a fused attention. An offset past L - n is a run-time error of
    the back ends.

    Example:
    ```mlir
    %row = synth.slice_rows %r offset %p : (tensor<4x256x256xf32>) -> tensor<4x1x256xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Index:$offset);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `offset` $offset attr-dict `:` functional-type($input, $result)
  }];
  let hasVerifier = 1;
}

def Synth_CacheUpdateOp : Synth_Op<"cache_update", [Pure]> {
  let summary = "writes new rows into a decoding cache at a position";
  let description = [{
    `cache` is [batch, heads, L, d] (keys or values of every position so far)
    and `update` [batch, heads, n, d] the rows of positions
    `position .. position + n - 1`; the result is the cache with those rows
    replaced. Writing past L is a run-time error of the back ends.

    Example:
    ```mlir
    %v2 = synth.cache_update %v_cache, %v_new at %p
        : (tensor<1x4x256x64xf32>, tensor<1x4x1x64xf32>) -> tensor<1x4x256x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$cache, Synth_FloatTensor:$update,
                       Index:$position);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $cache `,` $update `at` $position attr-dict `:`
    `(` type($cache) `,` type($update) `)` `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------===//

def Synth_AdamWOp : Synth_Op<"adamw", [Pure]> {
  let summary = "one AdamW step for one parameter tensor";
  let description = [{
    Decoupled-weight-decay Adam (Loshchilov & Hutter) at step t (1-based):
    ```
    m' = beta1 m + (1 - beta1) g
    v' = beta2 v + (1 - beta2) g^2
    p' = p - lr * (m' / (1 - beta1^t)) / (sqrt(v' / (1 - beta2^t)) + epsilon)
           - lr * weight_decay * p
    ```
    The moments are f32 whatever the parameter's type; `lr` is an f32 scalar
    tensor (so a schedule can compute it) and `step` an integer scalar.
    With `grad_sq_norm` (the sum of squares of every gradient of the step) and
    `max_grad_norm` > 0, `g` is first scaled by
    `min(1, max_grad_norm / (sqrt(grad_sq_norm) + 1e-6))` (global-norm
    clipping). Results: the new parameter, m and v.

    Example:
    ```mlir
    %p2, %m2, %v2 = synth.adamw %p, %g, %m, %v, %lr, %t
        {beta1 = 0.9 : f32, beta2 = 0.999 : f32, epsilon = 1.0e-08 : f32,
         weight_decay = 0.01 : f32}
        : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>,
           tensor<64x64xf32>, tensor<f32>, tensor<i64>)
        -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$param, Synth_FloatTensor:$grad,
                       Synth_F32Tensor:$m, Synth_F32Tensor:$v,
                       Synth_F32Scalar:$lr, Synth_StepScalar:$step,
                       Optional<Synth_F32Scalar>:$grad_sq_norm,
                       DefaultValuedAttr<F32Attr, "0.9">:$beta1,
                       DefaultValuedAttr<F32Attr, "0.999">:$beta2,
                       DefaultValuedAttr<F32Attr, "1.0e-08">:$epsilon,
                       DefaultValuedAttr<F32Attr, "0.0">:$weight_decay,
                       DefaultValuedAttr<F32Attr, "0.0">:$max_grad_norm);
  let results = (outs Synth_FloatTensor:$new_param, Synth_F32Tensor:$new_m,
                      Synth_F32Tensor:$new_v);
  let assemblyFormat = [{
    $param `,` $grad `,` $m `,` $v `,` $lr `,` $step
    (`grad_sq_norm` $grad_sq_norm^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

include "dialect/SynthGradOps.td"

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

def Synth_KernelOp : Synth_Op<"kernel", [
    IsolatedFromAbove, SingleBlock,
    DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmBlockArgumentNames"]>]> {
  let summary = "a region that becomes one generated kernel";
  let description = [{
    `fuse-elementwise` and `form-kernels` group ops into kernels. The region is
    isolated from above: its block arguments are the kernel's inputs (one per
    operand, same types) and `synth.yield` returns its outputs. `schedule` says
    how the back end tiles, vectorizes and parallelizes it, per target class;
    `assign-schedules` completes and checks it.

    Example:
    ```mlir
    %y = synth.kernel "ffn_0" (%x, %w) {
        schedule = #synth.schedule<{avx2 = {row_block = 6, col_vectors = 2,
                                            vector_width = 8}}>}
        : (tensor<2x16x64xf32>, tensor<64x256xf32>) -> tensor<2x16x256xf32> {
    ^bb0(%a: tensor<2x16x64xf32>, %b: tensor<64x256xf32>):
      %0 = synth.linear %a, %b : (tensor<2x16x64xf32>, tensor<64x256xf32>) -> tensor<2x16x256xf32>
      %1 = synth.relu %0 : tensor<2x16x256xf32>
      synth.yield %1 : tensor<2x16x256xf32>
    }
    ```
  }];
  let arguments = (ins StrAttr:$kernel_name, Variadic<AnyType>:$inputs,
                       OptionalAttr<Synth_ScheduleAttr>:$schedule);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $kernel_name `(` $inputs `)` attr-dict `:` functional-type($inputs, results) $body
  }];
  let hasVerifier = 1;
}

def Synth_YieldOp : Synth_Op<"yield", [
    Pure, Terminator, ReturnLike, HasParent<"KernelOp">]> {
  let summary = "returns the outputs of a kernel region";
  let description = [{
    Example:
    ```mlir
    synth.yield %1 : tensor<2x16x256xf32>
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

#endif // SYNTH_OPS_TD
