//===- Stats.h - parameter counts and FLOPs of a model --------------------===//
//
// What `synthc --stats` prints: parameter totals and FLOPs per token, counted
// from the math of docs/model-format.md (see docs/model-format.md#flops).
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_FRONTEND_STATS_H
#define SYNTHC_FRONTEND_STATS_H

#include "frontend/ModelConfig.h"
#include "frontend/Parameters.h"

#include <string>

namespace synth {

struct ModelStats {
  int64_t parameters = 0;
  int64_t trainable = 0;
  /// Forward FLOPs per (target) token at sequence length n.
  double forwardFlopsPerToken = 0;
  /// Forward + backward: 3x forward (each matmul-shaped product needs two
  /// more of the same size for the input and weight gradients).
  double trainingFlopsPerToken = 0;
};

/// Counts parameters and FLOPs for sequences of length `seqLen` (source and
/// target both `seqLen` for seq2seq).
ModelStats computeStats(const ModelConfig &config, int64_t seqLen);

/// The table `synthc --stats` prints: every parameter, totals, FLOPs.
std::string formatStats(const ModelConfig &config,
                        const std::vector<ParamInfo> &table, int64_t seqLen);

} // namespace synth

#endif // SYNTHC_FRONTEND_STATS_H
