//===- Stats.cpp - parameter counts and FLOPs -----------------------------===//
//
// FLOPs count 2 per multiply-add of the matmul-shaped work (projections,
// score functions, softmax(S) V, FFN, heads); layer norms, softmax and
// elementwise ops are not counted. Scores are counted for the full N x N
// square even when causal, as dense kernels compute them.
//
//===----------------------------------------------------------------------===//

#include "frontend/Stats.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include <algorithm>

namespace synth {

namespace {

/// Forward FLOPs per query token of one score function over n keys.
double scoreFlops(const ModelConfig &c, const AttentionSpec &spec, double n) {
  double D = c.dModel, H = c.heads;
  switch (spec.kind) {
  case AttentionKind::Dot:
    // Q and K projections, then q . k for every key.
    return 2 * 2 * D * D + 2 * n * D;
  case AttentionKind::Dense:
    return H * (2 * D * spec.hidden + 2 * spec.hidden * n);
  case AttentionKind::Random:
    return 0;
  case AttentionKind::FactorizedRandom:
    return H * 2 * spec.rank * n;
  case AttentionKind::FactorizedDense:
    return H * (2 * D * spec.hidden + 2 * spec.hidden * (spec.a + spec.b) + n);
  case AttentionKind::Mixture: {
    double total = H * 2 * static_cast<double>(spec.parts.size()) * n;
    for (const AttentionSpec &part : spec.parts) {
      total += scoreFlops(c, part, n);
    }
    return total;
  }
  }
  return 0;
}

/// Forward FLOPs per token of one self-attention layer plus its FFN.
double layerFlops(const ModelConfig &c, const AttentionSpec &spec, double n) {
  double D = c.dModel;
  double valueAndOutput = 2 * 2 * D * D;
  double mix = 2 * n * D; // softmax(S) V over all heads
  double ffn = 2 * 2 * D * c.ffn;
  return scoreFlops(c, spec, n) + valueAndOutput + mix + ffn;
}

} // namespace

ModelStats computeStats(const ModelConfig &config, int64_t seqLen) {
  ModelStats stats;
  for (const ParamInfo &p : parameterTable(config)) {
    stats.parameters += p.numel();
    if (p.trainable) {
      stats.trainable += p.numel();
    }
  }
  double n = static_cast<double>(seqLen), D = config.dModel;
  double flops = 0;
  for (const AttentionSpec &spec : config.encoderAttention) {
    flops += layerFlops(config, spec, n);
  }
  for (const AttentionSpec &spec : config.decoderAttention) {
    flops += layerFlops(config, spec, n);
    if (config.task == Task::Seq2Seq) {
      // Cross-attention: Q, O per target token; K, V per source token (as
      // many as targets here); scores and mix over n source tokens.
      flops += 4 * 2 * D * D + 2 * 2 * n * D;
    }
  }
  if (config.task == Task::Encoder) {
    flops += 2 * D * config.numClasses / n; // one classification per sequence
  } else {
    flops += 2 * D * config.vocabSize;
  }
  stats.forwardFlopsPerToken = flops;
  stats.trainingFlopsPerToken = 3 * flops;
  return stats;
}

std::string formatStats(const ModelConfig &config,
                        const std::vector<ParamInfo> &table, int64_t seqLen) {
  size_t width = 9;
  for (const ParamInfo &p : table) {
    width = std::max(width, p.name.size());
  }
  std::string out = absl::StrFormat(
      "model %s: task %s, d_model %d, heads %d, ffn %d, max_len %d, vocab %d\n",
      config.name.empty() ? "(unnamed)" : config.name, taskName(config.task),
      config.dModel, config.heads, config.ffn, config.maxLen, config.vocabSize);
  auto describeStack = [&](const char *stackName,
                           const std::vector<AttentionSpec> &layers) {
    if (layers.empty()) {
      return;
    }
    std::vector<std::string> kinds;
    for (const AttentionSpec &spec : layers) {
      kinds.push_back(spec.describe());
    }
    absl::StrAppend(&out, stackName, " layers ", layers.size(), ": ");
    for (size_t i = 0; i < kinds.size(); ++i) {
      absl::StrAppend(&out, i ? ", " : "", kinds[i]);
    }
    absl::StrAppend(&out, "\n");
  };
  describeStack(config.task == Task::Seq2Seq ? "encoder" : "self-attention",
                config.encoderAttention);
  describeStack(config.task == Task::Seq2Seq ? "decoder" : "self-attention",
                config.decoderAttention);
  absl::StrAppend(&out, "\n");
  absl::StrAppend(&out, absl::StrFormat("%-*s  %-16s %12s  %-9s  %s\n", width,
                                        "parameter", "shape", "count",
                                        "trainable", "init"));
  for (const ParamInfo &p : table) {
    absl::StrAppend(&out, absl::StrFormat("%-*s  %-16s %12d  %-9s  %s\n", width,
                                          p.name, formatShape(p.shape),
                                          p.numel(), p.trainable ? "yes" : "no",
                                          p.initDescription()));
  }
  ModelStats stats = computeStats(config, seqLen);
  absl::StrAppend(
      &out, "\n",
      absl::StrFormat("parameters: %d total, %d trainable, %d fixed (%.2fM)\n",
                      stats.parameters, stats.trainable,
                      stats.parameters - stats.trainable,
                      stats.parameters / 1e6),
      absl::StrFormat(
          "FLOPs per token at N = %d: forward %.4g (%.3f MFLOP), "
          "forward+backward %.4g (%.3f MFLOP)\n",
          seqLen, stats.forwardFlopsPerToken, stats.forwardFlopsPerToken / 1e6,
          stats.trainingFlopsPerToken, stats.trainingFlopsPerToken / 1e6));
  return out;
}

} // namespace synth
