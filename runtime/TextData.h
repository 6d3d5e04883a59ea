//===- TextData.h - byte-level text corpora and language-model batches ----===//
//
// Training and evaluation data for byte-level language models: a prepared
// corpus file (scripts/prepare_kjv.py writes train.txt and heldout.txt) read
// with clear errors, and deterministic, resumable batches of byte windows.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_TEXTDATA_H
#define SYNTHC_RUNTIME_TEXTDATA_H

#include "runtime/Tensor.h"

#include "absl/status/statusor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace synth::data {

/// Targets that carry no loss (padding), as the models' cross-entropy ignores.
inline constexpr int32_t kIgnoreTarget = -100;

/// The bytes of a text corpus; fails on a missing file (saying how to prepare
/// one), an empty file, or binary data (a NUL byte), naming the file.
absl::StatusOr<std::string> loadTextCorpus(const std::string &path);

/// One batch: tokens [batch, seq] and targets [batch, seq] (I32); a target is
/// the byte after its token, or kIgnoreTarget past the end of the text (and
/// the token then 0).
struct Batch {
  Tensor tokens;
  Tensor targets;
  /// Targets that are real bytes (the loss is their mean).
  int64_t realTargets = 0;
};

/// Language-model batches from one text. Example k covers bytes
/// [start_k, start_k + seq + 1) where the starts are the multiples of seq;
/// every epoch visits all starts in a fresh order (a SplitMix64 shuffle seeded
/// with seed and the epoch), so the stream depends only on (seed, epoch,
/// position) and resumes exactly from a saved State.
class ByteBatcher {
public:
  ByteBatcher(std::string text, int64_t batch, int64_t seqLen, uint64_t seed);

  Batch next();

  struct State {
    uint64_t epoch = 0;
    uint64_t position = 0; ///< examples taken in this epoch
  };
  State state() const { return state_; }
  /// Continues from `state` (as saved by state()).
  void restore(State state);

  int64_t examplesPerEpoch() const {
    return static_cast<int64_t>(order_.size());
  }

private:
  void shuffle();

  std::string text_;
  int64_t batch_, seqLen_;
  uint64_t seed_;
  State state_;
  std::vector<int64_t> order_; ///< window starts, in this epoch's order
};

/// Evaluation batches covering every byte of `text` once, in order: windows of
/// seq + 1 bytes at the multiples of seq, the last ones padded.
std::vector<Batch> evaluationBatches(const std::string &text, int64_t batch,
                                     int64_t seqLen);

} // namespace synth::data

#endif // SYNTHC_RUNTIME_TEXTDATA_H
