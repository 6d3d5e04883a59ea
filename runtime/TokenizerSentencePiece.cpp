//===- TokenizerSentencePiece.cpp - libsentencepiece behind plain C++ -----===//
//
// No Abseil header may be included here (see TokenizerSentencePiece.h).
//
//===----------------------------------------------------------------------===//

#include "runtime/TokenizerSentencePiece.h"

#ifdef SYNTH_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>

#include <exception>
#endif

namespace synth::data::detail {

#ifdef SYNTH_HAVE_SENTENCEPIECE

namespace {

/// The library's message without its source location: failed internal checks
/// read "./src/file.cc(123) [condition] detail", often with no detail.
std::string describe(const sentencepiece::util::Status &status) {
  std::string text = status.error_message();
  if (text.find("ParseFromArray") != std::string::npos) {
    return "not a serialized SentencePiece ModelProto";
  }
  if (size_t at = text.find(") ["); at != std::string::npos) {
    size_t end = text.find("] ", at);
    if (end != std::string::npos && end + 2 < text.size()) {
      return text.substr(end + 2);
    }
  }
  return text;
}

} // namespace

bool SentencePieceModel::available() { return true; }

SentencePieceModel::SentencePieceModel()
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}

SentencePieceModel::~SentencePieceModel() = default;

std::unique_ptr<SentencePieceModel>
SentencePieceModel::load(const std::string &path, std::string &error) {
  std::unique_ptr<SentencePieceModel> model(new SentencePieceModel());
  // The library reports most problems as a Status but lets std::ifstream's
  // exceptions through (e.g. for a folder): both become `error`.
  try {
    sentencepiece::util::Status status = model->processor_->Load(path);
    if (!status.ok()) {
      error = describe(status);
      return nullptr;
    }
  } catch (const std::exception &e) {
    error = e.what();
    return nullptr;
  }
  // A parseable file that holds no pieces (e.g. an empty one) loads without
  // complaint but cannot tokenize anything.
  if (model->processor_->GetPieceSize() <= 0) {
    error = "the model has no pieces";
    return nullptr;
  }
  return model;
}

int SentencePieceModel::pieceCount() const {
  return processor_->GetPieceSize();
}

int SentencePieceModel::eosId() const { return processor_->eos_id(); }

bool SentencePieceModel::encode(std::string_view text, std::vector<int> &ids,
                                std::string &error) const {
  std::vector<int> pieces;
  sentencepiece::util::Status status = processor_->Encode(text, &pieces);
  if (!status.ok()) {
    error = describe(status);
    return false;
  }
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  return true;
}

bool SentencePieceModel::decode(const std::vector<int> &ids, std::string &text,
                                std::string &error) const {
  sentencepiece::util::Status status = processor_->Decode(ids, &text);
  if (!status.ok()) {
    error = describe(status);
    return false;
  }
  return true;
}

#else // !SYNTH_HAVE_SENTENCEPIECE

} // namespace synth::data::detail

// Without the library there is no processor type; an empty one lets the
// members below compile (no object is ever made: load() always fails).
class sentencepiece::SentencePieceProcessor {};

namespace synth::data::detail {

bool SentencePieceModel::available() { return false; }

SentencePieceModel::SentencePieceModel() = default;

SentencePieceModel::~SentencePieceModel() = default;

std::unique_ptr<SentencePieceModel>
SentencePieceModel::load(const std::string &, std::string &error) {
  error = "this build of synthc has no SentencePiece support (libsentencepiece "
          "was not found when it was configured; install Debian's "
          "libsentencepiece-dev and configure again)";
  return nullptr;
}

int SentencePieceModel::pieceCount() const { return 0; }

int SentencePieceModel::eosId() const { return -1; }

bool SentencePieceModel::encode(std::string_view, std::vector<int> &,
                                std::string &error) const {
  error = "no SentencePiece support";
  return false;
}

bool SentencePieceModel::decode(const std::vector<int> &, std::string &,
                                std::string &error) const {
  error = "no SentencePiece support";
  return false;
}

#endif // SYNTH_HAVE_SENTENCEPIECE

} // namespace synth::data::detail
