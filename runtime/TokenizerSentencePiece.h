//===- TokenizerSentencePiece.h - libsentencepiece behind plain C++ -------===//
//
// The one place that includes <sentencepiece_processor.h>. Debian's header
// declares its own absl::string_view, which clashes with Abseil's, so it
// cannot share a translation unit with Abseil: this interface uses only the
// standard library (errors are strings) and Tokenizer.cpp wraps it. Without
// libsentencepiece at configure time, loading reports that instead.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_TOKENIZERSENTENCEPIECE_H
#define SYNTHC_RUNTIME_TOKENIZERSENTENCEPIECE_H

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
} // namespace sentencepiece

namespace synth::data::detail {

class SentencePieceModel {
public:
  /// Whether this build links libsentencepiece.
  static bool available();
  /// The model in `path`, or null with `error` set (without the path).
  static std::unique_ptr<SentencePieceModel> load(const std::string &path,
                                                  std::string &error);
  ~SentencePieceModel();

  int pieceCount() const;
  /// The id of </s>, or -1 when the model has none.
  int eosId() const;
  /// Appends the ids of `text` to `ids`; false with `error` set on failure.
  bool encode(std::string_view text, std::vector<int> &ids,
              std::string &error) const;
  /// The text of `ids` (all in range); false with `error` set on failure.
  bool decode(const std::vector<int> &ids, std::string &text,
              std::string &error) const;

private:
  SentencePieceModel();

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

} // namespace synth::data::detail

#endif // SYNTHC_RUNTIME_TOKENIZERSENTENCEPIECE_H
