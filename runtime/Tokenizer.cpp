//===- Tokenizer.cpp - byte and SentencePiece tokenizers ------------------===//

#include "runtime/Tokenizer.h"

#include "runtime/TokenizerSentencePiece.h"

#include "absl/strings/str_cat.h"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace synth::data {

namespace {

/// Checks every id against [0, vocabSize), naming the first one outside.
absl::Status checkIds(const std::vector<int32_t> &ids, int64_t vocabSize) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocabSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", ids[i], " at index ", i,
                       " is outside the vocabulary [0, ", vocabSize, ")"));
    }
  }
  return absl::OkStatus();
}

} // namespace

const char *tokenizerKindName(TokenizerKind kind) {
  return kind == TokenizerKind::Bytes ? "bytes" : "sentencepiece";
}

Tokenizer::~Tokenizer() = default;

//===----------------------------------------------------------------------===//
// Bytes
//===----------------------------------------------------------------------===//

absl::StatusOr<std::vector<int32_t>>
ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    ids[i] = static_cast<uint8_t>(text[i]);
  }
  return ids;
}

absl::StatusOr<std::string>
ByteTokenizer::decode(const std::vector<int32_t> &ids) const {
  if (absl::Status status = checkIds(ids, vocabSize()); !status.ok()) {
    return status;
  }
  std::string text(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    text[i] = static_cast<char>(ids[i]);
  }
  return text;
}

//===----------------------------------------------------------------------===//
// SentencePiece
//===----------------------------------------------------------------------===//

SentencePieceTokenizer::SentencePieceTokenizer(
    std::unique_ptr<detail::SentencePieceModel> model, std::string path)
    : model_(std::move(model)), path_(std::move(path)) {}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

bool SentencePieceTokenizer::available() {
  return detail::SentencePieceModel::available();
}

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>>
SentencePieceTokenizer::load(const std::string &modelPath) {
  if (!available()) {
    std::string error;
    detail::SentencePieceModel::load(modelPath, error);
    return absl::FailedPreconditionError(
        absl::StrCat(modelPath, ": cannot load: ", error));
  }
  // libsentencepiece's message for a missing file is terse, and it throws on
  // a folder: check the file first.
  struct stat info;
  if (::stat(modelPath.c_str(), &info) != 0) {
    return absl::NotFoundError(
        absl::StrCat(modelPath, ": cannot open: ", std::strerror(errno),
                     " (train one with scripts/prepare_kjv.py OUT_DIR "
                     "--tokenizer=sentencepiece)"));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(modelPath, ": not a regular file"));
  }
  std::string error;
  std::unique_ptr<detail::SentencePieceModel> model =
      detail::SentencePieceModel::load(modelPath, error);
  if (!model) {
    return absl::InvalidArgumentError(
        absl::StrCat(modelPath, ": not a SentencePiece model (", error, ")"));
  }
  return std::unique_ptr<SentencePieceTokenizer>(
      new SentencePieceTokenizer(std::move(model), modelPath));
}

int64_t SentencePieceTokenizer::vocabSize() const {
  return model_->pieceCount();
}

int32_t SentencePieceTokenizer::lineEndId() const { return model_->eosId(); }

absl::StatusOr<std::vector<int32_t>>
SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  std::string error;
  auto encodeRun = [&](std::string_view run) {
    if (!model_->encode(run, ids, error)) {
      return absl::InternalError(
          absl::StrCat(path_, ": cannot encode: ", error));
    }
    return absl::OkStatus();
  };
  const int eos = model_->eosId();
  if (eos < 0) {
    if (absl::Status status = encodeRun(text); !status.ok()) {
      return status;
    }
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  // Line by line, as scripts/prepare_kjv.py encodes its splits.
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    std::string_view line = text.substr(begin, end == std::string_view::npos
                                                   ? std::string_view::npos
                                                   : end - begin);
    if (absl::Status status = encodeRun(line); !status.ok()) {
      return status;
    }
    if (end == std::string_view::npos) {
      break;
    }
    ids.push_back(eos);
    begin = end + 1;
  }
  return std::vector<int32_t>(ids.begin(), ids.end());
}

absl::StatusOr<std::string>
SentencePieceTokenizer::decode(const std::vector<int32_t> &ids) const {
  if (absl::Status status = checkIds(ids, vocabSize()); !status.ok()) {
    return status;
  }
  const int eos = model_->eosId();
  std::string text, error;
  std::vector<int> run;
  // Decodes the ids since the last line end and appends their text.
  auto flush = [&]() {
    std::string piece;
    if (!model_->decode(run, piece, error)) {
      return absl::InternalError(
          absl::StrCat(path_, ": cannot decode: ", error));
    }
    text += piece;
    run.clear();
    return absl::OkStatus();
  };
  for (int32_t id : ids) {
    if (id != eos) {
      run.push_back(id);
      continue;
    }
    if (absl::Status status = flush(); !status.ok()) {
      return status;
    }
    text += '\n';
  }
  if (absl::Status status = flush(); !status.ok()) {
    return status;
  }
  return text;
}

} // namespace synth::data
