//===- Reference.h - an independent reference implementation of the models ===//
//
// The forward pass, the loss and a hand-written backward pass of every model
// docs/model-format.md describes, as plain loops in double precision. It
// shares no math with the compiler: it is the yardstick the compiled kernels
// and the PyTorch cross-check (torch_crosscheck.py) are measured against.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_TEST_REFERENCE_REFERENCE_H
#define SYNTHC_TEST_REFERENCE_REFERENCE_H

#include "frontend/ModelConfig.h"
#include "frontend/Parameters.h"
#include "runtime/Safetensors.h"

#include "absl/status/statusor.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace synth::reference {

/// A dense row-major tensor of doubles.
struct Array {
  std::vector<int64_t> shape;
  std::vector<double> data;

  static Array zeros(std::vector<int64_t> shape);
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
};

/// Parameters, or their gradients, by their documented names.
using ArrayMap = std::map<std::string, Array>;

/// Checks `weights` against `table` (names, shapes, float32) and converts
/// every parameter to double.
absl::StatusOr<ArrayMap> loadParameters(const safetensors::File &weights,
                                        const std::vector<ParamInfo> &table);

/// One batch of inputs. Which fields are read depends on the task:
///   lm:      tokens, targets                      [B, N]
///   encoder: tokens, mask [B, N]; labels          [B]
///   seq2seq: source, sourceMask [B, S]; targetIn, targetOut [B, T]
/// Masks are 1 for a real token and 0 for padding; a target of -100 is
/// ignored by the loss.
struct Batch {
  int64_t batch = 1;
  int64_t seqLen = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> targets;
  std::vector<uint8_t> mask;
  std::vector<int32_t> labels;
  int64_t srcLen = 0, tgtLen = 0;
  std::vector<int32_t> source;
  std::vector<uint8_t> sourceMask;
  std::vector<int32_t> targetIn;
  std::vector<int32_t> targetOut;
};

/// The target value the loss skips (as PyTorch's ignore_index).
constexpr int32_t kIgnoreTarget = -100;

/// What one evaluation produces.
struct Result {
  /// [B, N, V] (lm), [B, C] (encoder), [B, T, V] (seq2seq).
  Array logits;
  /// The mean cross-entropy; 0 when every target is ignored.
  double loss = 0.0;
  /// d loss / d parameter for every trainable parameter (a fixed random R has
  /// no entry); empty unless gradients were requested.
  ArrayMap gradients;
};

/// Runs `config` with `params` on `batch`: logits, loss and (when
/// `withGradients`) the gradients. Every input is validated first (shapes,
/// token and label ranges, N <= max_len); errors are returned, never thrown.
absl::StatusOr<Result> evaluate(const ModelConfig &config,
                                const ArrayMap &params, const Batch &batch,
                                bool withGradients = true);

/// Random inputs for `config` drawn from SplitMix64(seed): tokens uniform in
/// the vocabulary, lm / seq2seq targets uniform with ~10% set to -100,
/// right-padded masks with at least one real token, labels uniform in the
/// classes. `seqLen` is N for lm and encoder; seq2seq uses `srcLen` and
/// `tgtLen`.
Batch makeRandomBatch(const ModelConfig &config, int64_t batch, int64_t seqLen,
                      int64_t srcLen, int64_t tgtLen, uint64_t seed);

} // namespace synth::reference

#endif // SYNTHC_TEST_REFERENCE_REFERENCE_H
