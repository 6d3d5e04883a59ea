//===- TextData.cpp - corpora, prepared data folders and batches ----------===//

#include "runtime/TextData.h"

#include "runtime/FileUtil.h"
#include "runtime/Npy.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace synth::data {

namespace {

/// SplitMix64, the project's seeded generator (same stream everywhere).
uint64_t splitMix(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Fills row `row` of `batch` with the window starting at `start`.
void fillRow(const std::vector<int32_t> &ids, int64_t start, int64_t seqLen,
             int64_t row, Batch &batch) {
  int32_t *tokens = batch.tokens.data<int32_t>() + row * seqLen;
  int32_t *targets = batch.targets.data<int32_t>() + row * seqLen;
  uint8_t *mask = batch.mask.data<uint8_t>() + row * seqLen;
  const int64_t size = static_cast<int64_t>(ids.size());
  for (int64_t i = 0; i < seqLen; ++i) {
    int64_t at = start + i;
    tokens[i] = at < size ? ids[at] : 0;
    mask[i] = at < size ? 1 : 0;
    if (at + 1 < size) {
      targets[i] = ids[at + 1];
      ++batch.realTargets;
    } else {
      targets[i] = kIgnoreTarget;
    }
  }
}

Batch emptyBatch(int64_t batch, int64_t seqLen) {
  Batch out;
  out.tokens = Tensor::zeros(DType::I32, {batch, seqLen});
  out.targets = Tensor::zeros(DType::I32, {batch, seqLen});
  out.mask = Tensor::zeros(DType::U8, {batch, seqLen});
  std::fill(out.targets.data<int32_t>(),
            out.targets.data<int32_t>() + batch * seqLen, kIgnoreTarget);
  return out;
}

/// A read error with a hint on how to make the missing file.
absl::Status withPrepareHint(const absl::Status &status, const char *how) {
  return absl::Status(
      status.code(),
      absl::StrCat(status.message(), " (prepare a corpus with ", how, ")"));
}

constexpr const char *kPrepareBytes = "scripts/prepare_kjv.py OUT_DIR";
constexpr const char *kPrepareSentencePiece =
    "scripts/prepare_kjv.py OUT_DIR --tokenizer=sentencepiece";

bool exists(const std::string &path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

/// The number of pieces spm.vocab lists: one `piece<TAB>score` line each.
absl::StatusOr<int64_t> countVocabularyPieces(const std::string &path) {
  absl::StatusOr<std::string> text = readFileBytes(path);
  if (!text.ok()) {
    return withPrepareHint(text.status(), kPrepareSentencePiece);
  }
  absl::string_view lines = *text;
  if (!lines.empty() && lines.back() == '\n') {
    lines.remove_suffix(1);
  }
  int64_t pieces = 0;
  for (absl::string_view line : absl::StrSplit(lines, '\n')) {
    if (lines.empty()) {
      break;
    }
    ++pieces;
    if (line.find('\t') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", pieces, ": expected `piece<TAB>score`"));
    }
  }
  if (pieces == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": empty vocabulary (no pieces)"));
  }
  return pieces;
}

std::string describe(TokenizerKind kind, int64_t vocabSize) {
  return absl::StrCat(tokenizerKindName(kind), " (", vocabSize, " ids)");
}

} // namespace

//===----------------------------------------------------------------------===//
// Corpora
//===----------------------------------------------------------------------===//

absl::StatusOr<std::string> loadTextCorpus(const std::string &path) {
  absl::StatusOr<std::string> bytes = readFileBytes(path);
  if (!bytes.ok()) {
    return withPrepareHint(bytes.status(), kPrepareBytes);
  }
  if (bytes->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": empty corpus (no bytes to train or evaluate on)"));
  }
  if (size_t nul = bytes->find('\0'); nul != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": binary data (a NUL byte at offset ", nul,
                     "); expected a text corpus"));
  }
  return bytes;
}

std::vector<int32_t> byteIds(std::string_view text) {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    ids[i] = static_cast<uint8_t>(text[i]);
  }
  return ids;
}

absl::StatusOr<std::vector<int32_t>> loadTokenCorpus(const std::string &path,
                                                     int64_t vocabSize) {
  absl::StatusOr<std::string> bytes = readFileBytes(path);
  if (!bytes.ok()) {
    return withPrepareHint(bytes.status(), kPrepareSentencePiece);
  }
  if (bytes->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": empty file (expected a .npy array of token ids)"));
  }
  absl::StatusOr<Tensor> array = npy::parse(*bytes, path);
  if (!array.ok()) {
    return array.status();
  }
  if (array->dtype != DType::I32) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": token ids must be int32, got ", dtypeName(array->dtype),
        " (save them with numpy.asarray(ids, dtype=numpy.int32))"));
  }
  if (array->shape.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": token ids must be a 1-D array, got shape ",
                     formatShape(array->shape)));
  }
  if (array->shape[0] == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": empty corpus (no token ids to train or evaluate on)"));
  }
  const int32_t *data = array->data<int32_t>();
  std::vector<int32_t> ids(data, data + array->shape[0]);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocabSize) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": token id ", ids[i], " at index ", i,
                       " is outside the vocabulary [0, ", vocabSize, ")"));
    }
  }
  return ids;
}

//===----------------------------------------------------------------------===//
// Prepared data folders
//===----------------------------------------------------------------------===//

absl::StatusOr<PreparedData> openPreparedData(const std::string &dir) {
  struct stat info;
  if (::stat(dir.c_str(), &info) != 0) {
    return withPrepareHint(absl::NotFoundError(absl::StrCat(
                               dir, ": cannot open: ", std::strerror(errno))),
                           kPrepareBytes);
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir,
        ": not a folder (expected one written by scripts/prepare_kjv.py)"));
  }
  PreparedData data;
  data.dir = dir;
  std::string model = absl::StrCat(dir, "/spm.model");
  if (exists(model)) {
    absl::StatusOr<int64_t> pieces =
        countVocabularyPieces(absl::StrCat(dir, "/spm.vocab"));
    if (!pieces.ok()) {
      return pieces.status();
    }
    data.kind = TokenizerKind::SentencePiece;
    data.vocabSize = *pieces;
    data.trainPath = absl::StrCat(dir, "/train.ids.npy");
    data.heldoutPath = absl::StrCat(dir, "/heldout.ids.npy");
  } else {
    data.trainPath = absl::StrCat(dir, "/train.txt");
    data.heldoutPath = absl::StrCat(dir, "/heldout.txt");
  }
  return data;
}

absl::StatusOr<std::vector<int32_t>> loadSplit(const PreparedData &data,
                                               Split split) {
  const std::string &path =
      split == Split::Train ? data.trainPath : data.heldoutPath;
  if (data.kind == TokenizerKind::SentencePiece) {
    return loadTokenCorpus(path, data.vocabSize);
  }
  absl::StatusOr<std::string> text = loadTextCorpus(path);
  if (!text.ok()) {
    return text.status();
  }
  return byteIds(*text);
}

absl::StatusOr<std::unique_ptr<Tokenizer>>
openTokenizer(const PreparedData &data) {
  if (data.kind == TokenizerKind::Bytes) {
    return std::make_unique<ByteTokenizer>();
  }
  std::string model = absl::StrCat(data.dir, "/spm.model");
  absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> tokenizer =
      SentencePieceTokenizer::load(model);
  if (!tokenizer.ok()) {
    return tokenizer.status();
  }
  // spm.model and spm.vocab come from one spm_train run; a mismatch means
  // the folder mixes two preparations.
  if ((*tokenizer)->vocabSize() != data.vocabSize) {
    return absl::FailedPreconditionError(
        absl::StrCat(model, ": ", (*tokenizer)->vocabSize(), " pieces, but ",
                     data.dir, "/spm.vocab lists ", data.vocabSize,
                     " (files of two preparations? prepare the folder again)"));
  }
  return std::unique_ptr<Tokenizer>(std::move(*tokenizer));
}

absl::Status checkModelVocabulary(const PreparedData &data,
                                  TokenizerKind modelKind,
                                  int64_t modelVocabSize) {
  if (modelKind == data.kind && modelVocabSize == data.vocabSize) {
    return absl::OkStatus();
  }
  std::string wanted =
      data.kind == TokenizerKind::Bytes
          ? std::string(R"("vocab": {"kind": "bytes"})")
          : absl::StrCat(R"("vocab": {"kind": "sentencepiece", "size": )",
                         data.vocabSize, "}");
  return absl::FailedPreconditionError(absl::StrCat(
      "vocabulary mismatch: the model's is ",
      describe(modelKind, modelVocabSize), " but ", data.dir, " holds ",
      describe(data.kind, data.vocabSize),
      data.kind == TokenizerKind::SentencePiece ? " (spm.vocab)" : "",
      "; a model for this data needs ", wanted));
}

//===----------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------===//

TokenBatcher::TokenBatcher(std::vector<int32_t> ids, int64_t batch,
                           int64_t seqLen, uint64_t seed)
    : ids_(std::move(ids)), batch_(batch), seqLen_(seqLen), seed_(seed) {
  // Windows start at every multiple of seqLen that leaves a target.
  for (int64_t start = 0; start + 1 < static_cast<int64_t>(ids_.size());
       start += seqLen_) {
    order_.push_back(start);
  }
  shuffle();
}

void TokenBatcher::shuffle() {
  std::sort(order_.begin(), order_.end());
  uint64_t state = seed_ ^ (0xD1B54A32D192ED03ull * (state_.epoch + 1));
  // Fisher-Yates with SplitMix64.
  for (size_t i = order_.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(splitMix(state) % i);
    std::swap(order_[i - 1], order_[j]);
  }
}

void TokenBatcher::restore(State state) {
  state_ = state;
  shuffle();
}

Batch TokenBatcher::next() {
  Batch out = emptyBatch(batch_, seqLen_);
  out.realTargets = 0;
  if (order_.empty()) {
    return out; // no window has a target: padding only
  }
  for (int64_t row = 0; row < batch_; ++row) {
    if (state_.position >= order_.size()) {
      ++state_.epoch;
      state_.position = 0;
      shuffle();
    }
    fillRow(ids_, order_[state_.position++], seqLen_, row, out);
  }
  return out;
}

std::vector<Batch> evaluationBatches(const std::vector<int32_t> &ids,
                                     int64_t batch, int64_t seqLen) {
  std::vector<Batch> batches;
  int64_t row = batch;
  for (int64_t start = 0; start + 1 < static_cast<int64_t>(ids.size());
       start += seqLen) {
    if (row == batch) {
      batches.push_back(emptyBatch(batch, seqLen));
      row = 0;
    }
    fillRow(ids, start, seqLen, row++, batches.back());
  }
  return batches;
}

std::vector<Batch> evaluationBatches(std::string_view text, int64_t batch,
                                     int64_t seqLen) {
  return evaluationBatches(byteIds(text), batch, seqLen);
}

} // namespace synth::data
