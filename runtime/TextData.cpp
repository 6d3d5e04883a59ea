//===- TextData.cpp - byte-level text corpora and batches -----------------===//

#include "runtime/TextData.h"

#include "runtime/FileUtil.h"

#include "absl/strings/str_cat.h"

#include <algorithm>

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
void fillRow(const std::string &text, int64_t start, int64_t seqLen,
             int64_t row, Batch &batch) {
  int32_t *tokens = batch.tokens.data<int32_t>() + row * seqLen;
  int32_t *targets = batch.targets.data<int32_t>() + row * seqLen;
  const int64_t size = static_cast<int64_t>(text.size());
  for (int64_t i = 0; i < seqLen; ++i) {
    int64_t at = start + i;
    tokens[i] = at < size ? static_cast<uint8_t>(text[at]) : 0;
    if (at + 1 < size) {
      targets[i] = static_cast<uint8_t>(text[at + 1]);
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
  std::fill(out.targets.data<int32_t>(),
            out.targets.data<int32_t>() + batch * seqLen, kIgnoreTarget);
  return out;
}

} // namespace

absl::StatusOr<std::string> loadTextCorpus(const std::string &path) {
  absl::StatusOr<std::string> bytes = readFileBytes(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(),
                        absl::StrCat(bytes.status().message(),
                                     " (prepare a corpus with "
                                     "scripts/prepare_kjv.py OUT_DIR)"));
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

ByteBatcher::ByteBatcher(std::string text, int64_t batch, int64_t seqLen,
                         uint64_t seed)
    : text_(std::move(text)), batch_(batch), seqLen_(seqLen), seed_(seed) {
  // Windows start at every multiple of seqLen that leaves a target.
  for (int64_t start = 0; start + 1 < static_cast<int64_t>(text_.size());
       start += seqLen_) {
    order_.push_back(start);
  }
  shuffle();
}

void ByteBatcher::shuffle() {
  std::sort(order_.begin(), order_.end());
  uint64_t state = seed_ ^ (0xD1B54A32D192ED03ull * (state_.epoch + 1));
  // Fisher-Yates with SplitMix64.
  for (size_t i = order_.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(splitMix(state) % i);
    std::swap(order_[i - 1], order_[j]);
  }
}

void ByteBatcher::restore(State state) {
  state_ = state;
  shuffle();
}

Batch ByteBatcher::next() {
  Batch out = emptyBatch(batch_, seqLen_);
  out.realTargets = 0;
  for (int64_t row = 0; row < batch_; ++row) {
    if (state_.position >= order_.size()) {
      ++state_.epoch;
      state_.position = 0;
      shuffle();
    }
    fillRow(text_, order_[state_.position++], seqLen_, row, out);
  }
  return out;
}

std::vector<Batch> evaluationBatches(const std::string &text, int64_t batch,
                                     int64_t seqLen) {
  std::vector<Batch> batches;
  int64_t row = batch;
  for (int64_t start = 0; start + 1 < static_cast<int64_t>(text.size());
       start += seqLen) {
    if (row == batch) {
      batches.push_back(emptyBatch(batch, seqLen));
      row = 0;
    }
    fillRow(text, start, seqLen, row++, batches.back());
  }
  return batches;
}

} // namespace synth::data
