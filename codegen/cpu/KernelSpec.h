//===- KernelSpec.h - one kernel, described without MLIR or Halide --------===//
//
// The CPU back end works in two halves that must not share a translation
// unit: reading synth IR (MLIR, built without exceptions) and building Halide
// pipelines (Halide reports errors by exceptions). A KernelSpec is what passes
// between them: the kernel's tensors, its ops in order, its schedule.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_CODEGEN_CPU_KERNELSPEC_H
#define SYNTHC_CODEGEN_CPU_KERNELSPEC_H

#include "passes/CpuSchedule.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace synth::cpu {

enum class ElementType { F32, I32, U8 };

struct TensorSpec {
  std::vector<int64_t> shape; // row-major
  ElementType type = ElementType::F32;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) {
      n *= d;
    }
    return n;
  }
};

enum class OpKind {
  Embedding,
  AddPositions,
  LayerNorm,
  Linear,
  Relu,
  Gelu,
  Add,
  SplitHeads,
  MergeHeads,
  MeanPool,
  CrossEntropy,
  FusedAttention,
  SliceRows,
  CacheUpdate,
  AttentionProbs,
  AttendProbs,
  // Unfused attention (synth-fuse-attention off): each score op, the
  // mixture of scores, and attend (masked softmax + value product).
  DotScores,
  DenseScores,
  RandomScores,
  FactorizedRandomScores,
  FactorizedDenseScores,
  MixtureScores,
  Attend,
  // Gradients (SynthGradOps.td).
  EmbeddingGrad,
  LinearWeightGrad,
  SumRows,
  LayerNormGrad,
  LayerNormGammaGrad,
  ReluGrad,
  GeluGrad,
  PositionsGrad,
  MeanPoolGrad,
  CrossEntropyGrad,
  AttentionStats,
  FusedAttentionGrad,
  // Optimizer: synth.sum_squares, synth.learning_rate, and synth.adamw as
  // three ops (first moment, second moment, parameter) so that each result
  // is one op's.
  SumSquares,
  LearningRate,
  AdamMoment1,
  AdamMoment2,
  AdamParam,
};

enum class ScoreKind { Dot, Dense, Random, FactorizedRandom, FactorizedDense };

struct ScorePartSpec {
  ScoreKind kind = ScoreKind::Dot;
  float scale = 1.0f;        // dot
  int64_t maxLen = 0;        // synthesized kinds
  std::vector<int> operands; // value ids, in the standalone op's order
};

struct OpSpec {
  OpKind kind = OpKind::Relu;
  /// Value ids of the operands (optional ones absent) and the result.
  std::vector<int> operands;
  int result = -1;
  // Attributes (only those of `kind` are meaningful).
  float epsilon = 1e-5f;        // LayerNorm
  bool hasBias = false;         // Linear
  bool transposeWeight = false; // Linear
  bool geluTanh = false;        // Gelu
  int64_t ignoreIndex = -100;   // CrossEntropy
  // FusedAttention: parts, then optional logits, values, optional key mask.
  // A score op: its one part (scale, max_len, operands). MixtureScores: the
  // logits. Attend: values, key mask, causal and the query offset
  // (`position`).
  std::vector<ScorePartSpec> parts;
  int logits = -1;
  int values = -1;
  int keyMask = -1;
  bool causal = false;
  /// A scalar I32 position (AddPositions offset, FusedAttention query
  /// offset), or -1. SliceRows and CacheUpdate take it as their last operand.
  int position = -1;
  bool transposeProbs = false; // AttendProbs
  // FusedAttentionGrad: the forward result, its gradient, and the index of
  // the operand differentiated (score operands, logits, values).
  int output = -1;
  int dOutput = -1;
  int rowStats = -1;
  int wrt = -1;
  /// CrossEntropyGrad: the loss's cotangent (scalar), or -1 for 1.
  int scale = -1;
  // Optimizer attributes. Adam ops take the squared gradient norm as their
  // last operand when maxGradNorm > 0.
  float beta1 = 0.9f, beta2 = 0.999f, weightDecay = 0.0f, maxGradNorm = 0.0f;
  float peak = 1e-3f, finalRatio = 0.1f; // LearningRate
  int64_t warmupSteps = 0;               // LearningRate
};

struct KernelSpec {
  std::string name;
  /// Every tensor of the kernel by value id: ids [0, numInputs) are the
  /// kernel's inputs in argument order; the rest are op results.
  std::vector<TensorSpec> values;
  int numInputs = 0;
  std::vector<OpSpec> ops;
  /// Value ids of the kernel's outputs, in result order.
  std::vector<int> outputs;
  /// The schedule per target class ("avx512", "avx2", "sse41"), each with
  /// every field of passes/CpuSchedule.h for the kernel's ops (checked).
  std::map<std::string, synth::sched::Schedule> schedules;
  /// Who schedules the kernel: empty for the explicit schedule above, or a
  /// Halide autoscheduler of sched::autoschedulers() ("adams2019", ...),
  /// which then schedules the algorithm the fields shape.
  std::string scheduler;
  synth::sched::KernelTraits traits;
  /// The anchor op's name ("linear", "fused_attention", ...), for messages.
  std::string anchor;
};

} // namespace synth::cpu

#endif // SYNTHC_CODEGEN_CPU_KERNELSPEC_H
