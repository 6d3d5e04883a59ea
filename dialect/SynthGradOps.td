//===- SynthGradOps.td - ops of the backward pass and the optimizer -------===//
//
// What `synth-autodiff` emits for the vector-Jacobian products of the model
// ops, and what `synth-optimizer` emits around `synth.adamw`. Every op reads
// forward values (never stored probabilities) and produces one gradient; the
// back ends compile each like a forward op.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTH_GRAD_OPS_TD
#define SYNTH_GRAD_OPS_TD

def Synth_EmbeddingGradOp : Synth_Op<"embedding_grad", [Pure]> {
  let summary = "gradient of an embedding table: scatter-add of row gradients";
  let description = [{
    `table_grad[v, :] = sum over positions p with ids[p] == v of d_result[p, :]`.
    `ids` are the lookup's ids and `d_result` the gradient of its result
    ([..., d_model]); the result is [vocab, d_model].

    Example:
    ```mlir
    %g = synth.embedding_grad %ids, %dh
        : (tensor<2x16xi32>, tensor<2x16x64xf32>) -> tensor<256x64xf32>
    ```
  }];
  let arguments = (ins Synth_IdTensor:$ids, Synth_FloatTensor:$d_result);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$ids `,` $d_result attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_LinearWeightGradOp : Synth_Op<"linear_weight_grad", [Pure]> {
  let summary = "gradient of a linear map's weight: x^T dy over every row";
  let description = [{
    For `y = x W`: `dW[i, o] = sum over rows r of x[r, i] * d_result[r, o]`,
    the rows being every leading index of `x` ([..., in]) and `d_result`
    ([..., out]). With `transpose_weight` the result is [out, in] (the weight
    of `linear {transpose_weight}`).

    Example:
    ```mlir
    %gw = synth.linear_weight_grad %x, %dy
        : (tensor<2x16x64xf32>, tensor<2x16x256xf32>) -> tensor<64x256xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$d_result,
                       UnitAttr:$transpose_weight);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$input `,` $d_result attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_SumRowsOp : Synth_Op<"sum_rows", [Pure]> {
  let summary = "sum over every leading dimension (bias gradients)";
  let description = [{
    `result[c] = sum over leading indices r of input[r, c]`: the gradient of
    a bias (or of a layer norm's beta) from the gradient of the op's result.

    Example:
    ```mlir
    %gb = synth.sum_rows %dy : (tensor<2x16x256xf32>) -> tensor<256xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_LayerNormGradOp : Synth_Op<"layer_norm_grad", [Pure]> {
  let summary = "gradient of layer normalization with respect to its input";
  let description = [{
    With `xhat = (x - mean) * rstd` and `g = d_result * gamma` over the last
    dimension (size D): `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`.
    Row statistics are recomputed from `input`.

    Example:
    ```mlir
    %dx = synth.layer_norm_grad %x, %gamma, %dy {epsilon = 1.0e-05 : f32}
        : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<2x16x64xf32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$gamma,
                       Synth_FloatTensor:$d_result,
                       DefaultValuedAttr<F32Attr, "1.0e-05">:$epsilon);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $gamma `,` $d_result attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Synth_LayerNormGammaGradOp : Synth_Op<"layer_norm_gamma_grad", [Pure]> {
  let summary = "gradient of layer normalization with respect to gamma";
  let description = [{
    `dgamma[c] = sum over rows r of d_result[r, c] * xhat[r, c]`, with `xhat`
    the normalized input (statistics recomputed from `input`).

    Example:
    ```mlir
    %dg = synth.layer_norm_gamma_grad %x, %dy {epsilon = 1.0e-05 : f32}
        : (tensor<2x16x64xf32>, tensor<2x16x64xf32>) -> tensor<64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$d_result,
                       DefaultValuedAttr<F32Attr, "1.0e-05">:$epsilon);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$input `,` $d_result attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_ReluGradOp : Synth_Op<"relu_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "gradient through relu, from its result: dy * (y > 0)";
  let description = [{
    `result = d_result` where the relu's result `y` is positive, else 0 (the
    relu's output decides as well as its input, and is the value kept).

    Example:
    ```mlir
    %dx = synth.relu_grad %y, %dy : tensor<2x16x256xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$relu_result, Synth_FloatTensor:$d_result);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$relu_result `,` $d_result attr-dict `:` type($result)";
}

def Synth_GeluGradOp : Synth_Op<"gelu_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "gradient through gelu: dy * gelu'(x)";
  let description = [{
    `result = d_result * d/dx gelu(x)` for the gelu's input `x`, with the same
    approximation as the gelu.

    Example:
    ```mlir
    %dx = synth.gelu_grad %x, %dy approximation = tanh : tensor<2x16x256xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input, Synth_FloatTensor:$d_result,
      DefaultValuedAttr<Synth_GeluApproximation,
                        "::mlir::synth::GeluApproximation::Erf">:$approximation);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $d_result (`approximation` `=` $approximation^)? attr-dict `:` type($result)
  }];
}

def Synth_PositionsGradOp : Synth_Op<"positions_grad", [Pure]> {
  let summary = "gradient of a learned position table";
  let description = [{
    `table_grad[p, :] = sum over the batch of d_result[b, p, :]` for p < N and
    0 for the rows N <= p < L that the sequences did not reach. `d_result` is
    [batch, N, d]; the result is the table's [L, d].

    Example:
    ```mlir
    %g = synth.positions_grad %dy : (tensor<2x16x64xf32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$d_result);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$d_result attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_MeanPoolGradOp : Synth_Op<"mean_pool_grad", [Pure]> {
  let summary = "gradient of mean pooling: d_result spread over the real tokens";
  let description = [{
    `dx[b, i, :] = mask[b, i] * d_result[b, :] / max(1, sum_i mask[b, i])`.

    Example:
    ```mlir
    %dx = synth.mean_pool_grad %dp, %mask
        : (tensor<2x64xf32>, tensor<2x16xi1>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$d_result, Synth_MaskTensor:$mask);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = "$d_result `,` $mask attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Synth_CrossEntropyGradOp : Synth_Op<"cross_entropy_grad", [Pure]> {
  let summary = "gradient of the mean cross-entropy with respect to the logits";
  let description = [{
    `dlogits[r, :] = scale * (softmax(logits[r, :]) - onehot(target_r)) / count`
    for positions whose target is not `ignore_index` (0 for the others), with
    `count` the number of such positions (at least 1). `scale` is the loss's
    cotangent, 1 when absent (the loss is what is differentiated).

    Example:
    ```mlir
    %dl = synth.cross_entropy_grad %logits, %targets
        : (tensor<2x16x256xf32>, tensor<2x16xi32>) -> tensor<2x16x256xf32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$logits, Synth_IdTensor:$targets,
                       Optional<Synth_F32Scalar>:$scale,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $targets (`scale` $scale^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Synth_AttentionStatsOp : Synth_Op<"attention_stats", [
    Pure, AttrSizedOperandSegments]> {
  let summary = "row log-sum-exp of a fused attention's masked scores";
  let description = [{
    The softmax statistics that the backward pass of a `synth.fused_attention`
    with the same operands needs: `lse[b, h, i] = log sum_j exp(S[b, h, i, j]
    + M[i, j])` over the visible keys (a large positive number for a row with
    none, so that its weights are 0). Computed once per attention layer, read
    by every `synth.fused_attention_grad` of the layer, which then recompute
    `P = exp(S + M - lse)` tile by tile. `values` give the number of keys.

    Example:
    ```mlir
    %lse = synth.attention_stats [#synth.score<dot>] (%q, %k) values %v {causal}
        : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>)
        -> tensor<2x4x16xf32>
    ```
  }];
  let arguments = (ins
    TypedArrayAttrBase<Synth_ScorePartAttr, "score parts">:$score_parts,
    Variadic<Synth_FloatTensor>:$score_operands,
    Optional<Synth_FloatTensor>:$mixture_logits,
    Synth_FloatTensor:$values,
    Optional<Synth_MaskTensor>:$key_mask,
    UnitAttr:$causal);
  let results = (outs Synth_F32Tensor:$result);
  let assemblyFormat = [{
    $score_parts `(` $score_operands `)` (`logits` $mixture_logits^)?
    `values` $values (`key_mask` $key_mask^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The operands of score part `index`, in the order of its standalone op.
    ::mlir::OperandRange getPartOperands(unsigned index);
  }];
}

def Synth_FusedAttentionGradOp : Synth_Op<"fused_attention_grad", [
    Pure, AttrSizedOperandSegments]> {
  let summary = "gradient of a fused attention with respect to one operand";
  let description = [{
    The operands of a `synth.fused_attention` (score parts, mixture logits,
    values, key mask), its result `output`, the result's gradient `d_output`
    and the layer's `synth.attention_stats` (`row_stats`); `wrt` indexes the fused attention's operands (score operands,
    then the logits when present, then the values). The result is the gradient
    of `sum(d_output * fused_attention(...))` with respect to that operand.

    Nothing of size N x N per batch and head need be stored: back ends
    recompute the scores from the operands, tile by tile (flash-style), with
    `P = exp(S + M - row_stats)`, `D_i = d_output_i . output_i`,
    `dS = P * (d_output v^T - D)`. Reductions over the batch (a random matrix's
    gradient, the synthesizers' weights) happen inside the kernel.

    Example (the gradient of a random matrix):
    ```mlir
    %dr = synth.fused_attention_grad [#synth.score<random, max_len = 16 : i64>]
        (%r) values %v output %o d_output %do stats %lse wrt 0 {causal}
        : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>,
           tensor<2x4x16x16xf32>, tensor<2x4x16xf32>) -> tensor<4x16x16xf32>
    ```
  }];
  let arguments = (ins
    TypedArrayAttrBase<Synth_ScorePartAttr, "score parts">:$score_parts,
    Variadic<Synth_FloatTensor>:$score_operands,
    Optional<Synth_FloatTensor>:$mixture_logits,
    Synth_FloatTensor:$values,
    Optional<Synth_MaskTensor>:$key_mask,
    Synth_FloatTensor:$output,
    Synth_FloatTensor:$d_output,
    Synth_F32Tensor:$row_stats,
    I64Attr:$wrt,
    UnitAttr:$causal);
  let results = (outs Synth_FloatTensor:$result);
  let assemblyFormat = [{
    $score_parts `(` $score_operands `)` (`logits` $mixture_logits^)?
    `values` $values (`key_mask` $key_mask^)? `output` $output
    `d_output` $d_output `stats` $row_stats `wrt` $wrt attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The operands of score part `index`, in the order of its standalone op.
    ::mlir::OperandRange getPartOperands(unsigned index);
    /// The operand whose gradient this op computes.
    ::mlir::Value getWrtOperand() { return getOperand(getWrt()); }
  }];
}

def Synth_SumSquaresOp : Synth_Op<"sum_squares", [Pure]> {
  let summary = "sum of the squares of every element, as an f32 scalar";
  let description = [{
    For global-norm gradient clipping: the optimizer adds these over every
    gradient.

    Example:
    ```mlir
    %s = synth.sum_squares %g : (tensor<64x64xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Synth_FloatTensor:$input);
  let results = (outs Synth_F32Scalar:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def Synth_LearningRateOp : Synth_Op<"learning_rate", [Pure]> {
  let summary = "linear warm-up then cosine decay of the learning rate";
  let description = [{
    At step t (1-based) of T: `peak * t / warmup` while `t <= warmup`, then
    `peak * (final + (1 - final) * (1 + cos(pi * p)) / 2)` with
    `p = min(1, (t - warmup) / max(1, T - warmup))`: the rate falls from
    `peak` to `final * peak` by the last step and stays there.

    Example:
    ```mlir
    %lr = synth.learning_rate %t, %total
        {peak = 1.0e-03 : f32, warmup_steps = 100 : i64, final_ratio = 0.1 : f32}
        : (tensor<i32>, tensor<i32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Synth_StepScalar:$step, Synth_StepScalar:$total_steps,
                       F32Attr:$peak, I64Attr:$warmup_steps,
                       DefaultValuedAttr<F32Attr, "0.1">:$final_ratio);
  let results = (outs Synth_F32Scalar:$result);
  let assemblyFormat = "$step `,` $total_steps attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // SYNTH_GRAD_OPS_TD
