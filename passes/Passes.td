//===- Passes.td - transformations on synth IR ----------------------------===//
//
// Every pass of synthc: a flag, a summary and a description. Each has a lit
// test named after its flag in test/passes/.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTH_PASSES_TD
#define SYNTH_PASSES_TD

include "mlir/Pass/PassBase.td"

def FuseAttention : Pass<"synth-fuse-attention", "::mlir::func::FuncOp"> {
  let summary = "Fuse score ops and synth.attend into synth.fused_attention";
  let description = [{
    Rewrites `attend(scores(...), values)` into one `synth.fused_attention`
    whose score parts are the score ops feeding it: a single score op, or every
    part of a `synth.mixture_scores` (all computed inside the same kernel,
    mixed by the mixture's logits). Masks (causal, key padding, query offset)
    carry over. Score ops left without users are erased. An attend whose
    scores come from anything else (a block argument, another op) is left
    alone. Fixed random attention (`random_scores {trainable = false}`)
    without padding mask or query offset becomes `attention_probs` (its
    weights, which depend on R alone and are computed once per parameter
    binding) followed by `attend_probs`.

    Example: `%s = synth.random_scores %r` + `%o = synth.attend %s, %v {causal}`
    becomes `%o = synth.fused_attention [#synth.score<random, max_len = L>] (%r)
    values %v {causal}`.

    Options (the fusion switch `attention` of `synthc --no-fuse` and of the
    `synth-cpu-kernels` pipeline turns both off): `scores=false` leaves every
    score op and attend as they are (the unfused baseline: scores, softmax and
    the value product as kernels of their own); `fixed-random=false` treats
    fixed random attention like any other score op.
  }];
  let options = [
    Option<"fuseScores", "scores", "bool", "true",
           "rewrite score ops + attend into synth.fused_attention">,
    Option<"fixedRandom", "fixed-random", "bool", "true",
           "rewrite fixed random attention (no key mask, no query offset) "
           "into attention_probs + attend_probs">,
  ];
  let dependentDialects = ["::mlir::synth::SynthDialect"];
}

def FuseElementwise : Pass<"synth-fuse-elementwise", "::mlir::func::FuncOp"> {
  let summary = "Group elementwise and layout ops with their producers into kernels";
  let description = [{
    Forms `synth.kernel` regions for producer/consumer chains that one kernel
    computes without writing the intermediate to memory: an elementwise op
    (`relu`, `gelu`, `add`: bias, activation, residual) or a layout op
    (`split_heads`, `merge_heads`) joins the kernel of the producer of one of
    its operands when that value has no other use. So a linear followed by its
    activation, an output projection followed by its residual add, and an
    attention followed by its head merge each become one kernel. Kernels are
    created without a schedule; `synth-form-kernels` attaches one. The fusion
    switch `elementwise` (`synthc --no-fuse`, `synth-cpu-kernels{no-fuse}`)
    leaves this pass out of the pipeline: every op becomes a kernel of its
    own.
  }];
  let dependentDialects = ["::mlir::synth::SynthDialect"];
}

def FuseProjections : Pass<"synth-fuse-projections", "::mlir::func::FuncOp"> {
  let summary = "Linears of one input as one kernel, and a layer norm as the prologue of the linears it feeds";
  let description = [{
    Runs after `synth-fuse-elementwise`, on its kernels and on loose linears.

    `projections`: linears that read the same value with weights of the same
    type and layout (an attention layer's Q, K and V projections, each with
    its head split; cross-attention's K and V) join one kernel with one
    result per projection. The CPU back end computes them as one product with
    the weights stacked (field `stack_order`: each weight in turn, or every
    weight per block of the input's rows, loaded once for all of them). A
    member's results must be used only after the last member (the joint
    kernel takes its place), so loose linears each followed by its own head
    split (`synth-fuse-elementwise` off) stay apart.

    `prologue`: a layer norm whose result is read only by one linear, or by
    one kernel and there only as its linears' input, joins that kernel: the
    CPU back end normalizes the rows where its product needs them (schedule
    field `prologue_at`) instead of writing the normalized tensor and reading
    it back. (In the training functions the weight gradients read the
    normalized tensor too, so the layer norm stays a kernel of its own.)

    Both are fusion switches of `synthc --no-fuse` and of
    `synth-cpu-kernels{no-fuse}`. The CUDA back end lowers one linear per
    kernel, so synthc turns both off for CUDA targets.
  }];
  let options = [
    Option<"projections", "projections", "bool", "true",
           "join linears that read the same input">,
    Option<"prologue", "prologue", "bool", "true",
           "join a layer norm to the linear kernel that reads it">,
  ];
  let dependentDialects = ["::mlir::synth::SynthDialect"];
}

def FormKernels : Pass<"synth-form-kernels", "::mlir::func::FuncOp"> {
  let summary = "Wrap every remaining op in a kernel and name the kernels";
  let description = [{
    After this pass a function body is a sequence of `synth.kernel` ops and its
    return: every synth op not yet in a kernel gets a kernel of its own. Each
    kernel is named `<function>_k<index>_<anchor>` (the anchor is the kernel's
    main op). Schedules come from `synth-assign-schedules`.
  }];
  let dependentDialects = ["::mlir::synth::SynthDialect"];
}

def AssignSchedules : Pass<"synth-assign-schedules", "::mlir::func::FuncOp"> {
  let summary = "Attach every kernel's CPU schedule, per target class, and check it";
  let description = [{
    For each target class in `targets` (`avx512`, `avx2`, `sse41`: one kernel
    variant each in a portable build), gives every `synth.kernel` the fields
    of its `#synth.schedule` that it does not set yet, from a heuristic that
    knows the class's vector lanes and register count (passes/CpuSchedule.h:
    the register block of a matmul fits 32 registers on AVX-512 and 16 on
    AVX2 and SSE4.1), then checks every field: known for the kernel's ops,
    in range, a vector width the target has, a parallel loop the kernel has,
    lanes that divide the tile they reduce. Fields already set (a schedule
    file, synth-tune) are kept. Errors name the kernel, target and field.
  }];
  let options = [
    ListOption<"targets", "targets", "std::string",
               "target classes to schedule for (avx512, avx2, sse41)">,
  ];
  let dependentDialects = ["::mlir::synth::SynthDialect"];
}

def PlanMemory : Pass<"synth-plan-memory", "::mlir::func::FuncOp"> {
  let summary = "Assign arena offsets to kernel results by liveness";
  let description = [{
    Plans the memory of a function made of kernels: every kernel result that
    the function does not return is a temporary placed in one arena; results
    whose lifetimes (from the kernel that writes them to the last kernel that
    reads them) do not overlap share bytes. First-fit over offsets, 64-byte
    aligned. A kernel's outputs never alias its own inputs.

    Results: `synth.arena_offsets` on each kernel (one byte offset per result,
    -1 for results the function returns) and `synth.arena_bytes` on the
    function.
  }];
  let dependentDialects = ["::mlir::synth::SynthDialect"];
}

def Autodiff : Pass<"synth-autodiff", "::mlir::ModuleOp"> {
  let summary = "Build the gradient function of the loss (reverse mode)";
  let description = [{
    Clones the function `source` (default `loss`, which must return the
    result of `synth.cross_entropy`) into `target` (default `gradients`),
    which returns the loss, then the gradient of every trainable parameter
    (arguments with `synth.param` and without `synth.trainable = false`), in
    argument order, named `grad.<parameter>` by `synth.output`.

    Reverse mode over the straight-line body: values that depend on a
    trainable parameter are active; ops are visited from the loss backwards
    and each active op's `DifferentiableOpInterface` builds the gradients of
    its operands from the gradient of its result; gradients of a value used
    more than once are summed with `synth.add`. Gradient ops nobody uses
    (those of inactive operands) are erased. Fixed random matrices, token ids
    and masks get no gradient.
  }];
  let options = [
    Option<"source", "source", "std::string", "\"loss\"",
           "the function to differentiate">,
    Option<"target", "target", "std::string", "\"gradients\"",
           "the name of the gradient function to create">,
  ];
  let dependentDialects = ["::mlir::synth::SynthDialect"];
}

def Optimizer : Pass<"synth-optimizer", "::mlir::ModuleOp"> {
  let summary = "Append AdamW to the gradient function: the train_step entry";
  let description = [{
    Clones `gradients` into `train_step` and appends one optimizer step:
    the sum of squares of every gradient (`synth.sum_squares`, added), the
    learning rate at `step` of `total_steps` (`synth.learning_rate`: linear
    warm-up, cosine decay), and one `synth.adamw` per trainable parameter
    with global-norm clipping. Parameters initialized to zeros or ones
    (biases, norm gains and offsets, mixture logits; marked
    `synth.no_decay` by the frontend) get no weight decay.

    New arguments: inputs `step` (1-based) and `total_steps` (i32 scalars),
    and the moments of each trainable parameter (`synth.state` =
    `adam.m.<parameter>` / `adam.v.<parameter>`, f32, zero at the start).
    Results: `loss`, `learning_rate`, `grad_sq_norm`, then the new value of
    every parameter and moment, each marked `synth.updates = <argument
    index>`: the back ends write it in place of that argument. Without
    `keep-gradients`, @gradients is erased afterwards.
  }];
  let options = [
    Option<"learningRate", "lr", "double", "1.0e-3", "peak learning rate">,
    Option<"warmupSteps", "warmup-steps", "int64_t", "100",
           "steps of linear warm-up">,
    Option<"finalRatio", "final-lr-ratio", "double", "0.1",
           "final learning rate / peak">,
    Option<"beta1", "beta1", "double", "0.9", "AdamW beta1">,
    Option<"beta2", "beta2", "double", "0.98", "AdamW beta2">,
    Option<"epsilon", "epsilon", "double", "1.0e-8", "AdamW epsilon">,
    Option<"weightDecay", "weight-decay", "double", "0.01",
           "decoupled weight decay of the weight matrices">,
    Option<"maxGradNorm", "max-grad-norm", "double", "1.0",
           "global gradient-norm clipping threshold (0: no clipping)">,
    Option<"keepGradients", "keep-gradients", "bool", "true",
           "keep @gradients (an entry for gradient checks) next to "
           "@train_step">,
  ];
  let dependentDialects = ["::mlir::synth::SynthDialect"];
}

#endif // SYNTH_PASSES_TD
