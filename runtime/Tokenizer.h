//===- Tokenizer.h - text to token ids and back ---------------------------===//
//
// The vocabularies a model description names (docs/model-format.md, `vocab`):
// bytes (256 ids, a byte is its own id) and SentencePiece (a model trained by
// scripts/prepare_kjv.py --tokenizer=sentencepiece, read with libsentencepiece
// when the runtime was built with it).
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_TOKENIZER_H
#define SYNTHC_RUNTIME_TOKENIZER_H

#include "absl/status/statusor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace synth::data {

enum class TokenizerKind { Bytes, SentencePiece };

/// "bytes" or "sentencepiece", as the model description spells the kind.
const char *tokenizerKindName(TokenizerKind kind);

/// Text to ids in [0, vocabSize()) and back. Implementations are immutable
/// after loading, so one tokenizer may serve several threads.
class Tokenizer {
public:
  virtual ~Tokenizer();

  virtual TokenizerKind kind() const = 0;
  virtual int64_t vocabSize() const = 0;
  virtual absl::StatusOr<std::vector<int32_t>>
  encode(std::string_view text) const = 0;
  /// Fails on an id outside [0, vocabSize()), naming its index.
  virtual absl::StatusOr<std::string>
  decode(const std::vector<int32_t> &ids) const = 0;
};

/// Bytes: id b is the byte b, so every text round-trips exactly.
class ByteTokenizer final : public Tokenizer {
public:
  TokenizerKind kind() const override { return TokenizerKind::Bytes; }
  int64_t vocabSize() const override { return 256; }
  absl::StatusOr<std::vector<int32_t>>
  encode(std::string_view text) const override;
  absl::StatusOr<std::string>
  decode(const std::vector<int32_t> &ids) const override;
};

namespace detail {
class SentencePieceModel;
} // namespace detail

/// A SentencePiece model (spm.model). Text is encoded line by line as
/// scripts/prepare_kjv.py does: each line's pieces, then </s> for its newline
/// (a last line without one gets none); decoding turns </s> back into a
/// newline. A model without </s> encodes the text in one piece.
class SentencePieceTokenizer final : public Tokenizer {
public:
  /// Fails, naming the file, when it is missing or not a SentencePiece model,
  /// and says so when the runtime was built without libsentencepiece.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>>
  load(const std::string &modelPath);
  /// Whether this build can load models (libsentencepiece was found).
  static bool available();

  ~SentencePieceTokenizer() override;

  TokenizerKind kind() const override { return TokenizerKind::SentencePiece; }
  int64_t vocabSize() const override;
  /// The id that ends a line (</s>), or -1 when the model has none.
  int32_t lineEndId() const;
  absl::StatusOr<std::vector<int32_t>>
  encode(std::string_view text) const override;
  absl::StatusOr<std::string>
  decode(const std::vector<int32_t> &ids) const override;

private:
  SentencePieceTokenizer(std::unique_ptr<detail::SentencePieceModel> model,
                         std::string path);

  std::unique_ptr<detail::SentencePieceModel> model_;
  std::string path_;
};

} // namespace synth::data

#endif // SYNTHC_RUNTIME_TOKENIZER_H
