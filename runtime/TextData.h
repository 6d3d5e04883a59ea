//===- TextData.h - text corpora, token corpora and language-model batches ===//
//
// Training and evaluation data for language models: a prepared corpus
// (scripts/prepare_kjv.py writes train.txt and heldout.txt, and with
// --tokenizer=sentencepiece also spm.model, train.ids.npy and heldout.ids.npy)
// read with clear errors, and deterministic, resumable batches of token
// windows. Bytes are the special case of token ids where id b is the byte b.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_TEXTDATA_H
#define SYNTHC_RUNTIME_TEXTDATA_H

#include "runtime/Tensor.h"
#include "runtime/Tokenizer.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace synth::data {

/// Targets that carry no loss (padding), as the models' cross-entropy ignores.
inline constexpr int32_t kIgnoreTarget = -100;

//===----------------------------------------------------------------------===//
// Corpora
//===----------------------------------------------------------------------===//

/// The bytes of a text corpus; fails on a missing file (saying how to prepare
/// one), an empty file, or binary data (a NUL byte), naming the file.
absl::StatusOr<std::string> loadTextCorpus(const std::string &path);

/// The token ids of a byte text (the byte vocabulary: id b is the byte b).
std::vector<int32_t> byteIds(std::string_view text);

/// The token ids of a .npy file: a non-empty 1-D int32 array whose every id
/// is in [0, vocabSize). Errors name the file; an id out of range also its
/// index and value; a missing file says how to prepare one.
absl::StatusOr<std::vector<int32_t>> loadTokenCorpus(const std::string &path,
                                                     int64_t vocabSize);

//===----------------------------------------------------------------------===//
// Prepared data folders
//===----------------------------------------------------------------------===//

/// A folder written by scripts/prepare_kjv.py. With spm.model it holds
/// SentencePiece ids (train.ids.npy, heldout.ids.npy; the vocabulary is the
/// pieces listed in spm.vocab), otherwise bytes (train.txt, heldout.txt;
/// vocabulary 256).
struct PreparedData {
  std::string dir;
  TokenizerKind kind = TokenizerKind::Bytes;
  int64_t vocabSize = 256;
  /// The corpus files of the two splits.
  std::string trainPath, heldoutPath;
};

enum class Split { Train, HeldOut };

/// Looks at `dir` (loads no corpus yet): fails when it is not a folder, or
/// holds spm.model without a readable spm.vocab.
absl::StatusOr<PreparedData> openPreparedData(const std::string &dir);

/// The ids of one split, checked as loadTextCorpus or loadTokenCorpus do.
absl::StatusOr<std::vector<int32_t>> loadSplit(const PreparedData &data,
                                               Split split);

/// The tokenizer of the folder's ids: bytes, or its spm.model (whose piece
/// count must match spm.vocab).
absl::StatusOr<std::unique_ptr<Tokenizer>>
openTokenizer(const PreparedData &data);

/// Checks a model's vocabulary (the description's `vocab`: its kind and
/// size) against the folder's; a mismatch says what each side has.
absl::Status checkModelVocabulary(const PreparedData &data,
                                  TokenizerKind modelKind,
                                  int64_t modelVocabSize);

//===----------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------===//

/// One batch: tokens, targets [batch, seq] (I32) and mask [batch, seq] (U8).
/// A target is the id after its token, or kIgnoreTarget past the end of the
/// corpus (and the token then 0, its mask 0: padding).
struct Batch {
  Tensor tokens;
  Tensor targets;
  /// 1 where the token comes from the corpus, 0 where it is padding.
  Tensor mask;
  /// Targets that are real ids (the loss is their mean).
  int64_t realTargets = 0;
};

/// Language-model batches from one corpus of token ids. Example k covers ids
/// [start_k, start_k + seq + 1) where the starts are the multiples of seq;
/// every epoch visits all starts in a fresh order (a SplitMix64 shuffle seeded
/// with seed and the epoch), so the stream depends only on (seed, epoch,
/// position) and resumes exactly from a saved State. A corpus of fewer than
/// two ids has no examples: every batch is padding.
class TokenBatcher {
public:
  TokenBatcher(std::vector<int32_t> ids, int64_t batch, int64_t seqLen,
               uint64_t seed);

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

  std::vector<int32_t> ids_;
  int64_t batch_, seqLen_;
  uint64_t seed_;
  State state_;
  std::vector<int64_t> order_; ///< window starts, in this epoch's order
};

/// Batches of a byte text: a TokenBatcher over its bytes (same stream).
class ByteBatcher : public TokenBatcher {
public:
  ByteBatcher(std::string_view text, int64_t batch, int64_t seqLen,
              uint64_t seed)
      : TokenBatcher(byteIds(text), batch, seqLen, seed) {}
};

/// Evaluation batches covering every id once, in order: windows of seq + 1
/// ids at the multiples of seq, the last ones padded.
std::vector<Batch> evaluationBatches(const std::vector<int32_t> &ids,
                                     int64_t batch, int64_t seqLen);
/// The same over the bytes of `text`.
std::vector<Batch> evaluationBatches(std::string_view text, int64_t batch,
                                     int64_t seqLen);

} // namespace synth::data

#endif // SYNTHC_RUNTIME_TEXTDATA_H
