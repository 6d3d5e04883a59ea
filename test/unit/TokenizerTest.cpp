//===- TokenizerTest.cpp - tokenizers and prepared data folders -----------===//
//
// The SentencePiece tests use real models: one trained here with spm_train on
// the project's own documentation, and one trained by scripts/prepare_kjv.py
// on a few chapters of the King James Bible (test/data/Inputs/ruth.vpl).
//
//===----------------------------------------------------------------------===//

#include "runtime/Tokenizer.h"
#include "runtime/TextData.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using synth::data::ByteTokenizer;
using synth::data::PreparedData;
using synth::data::SentencePieceTokenizer;
using synth::data::Split;
using synth::data::TokenizerKind;

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeText(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// This process's folder under the test's temporary directory (ctest runs
/// tests in parallel, each in its own process), removed at exit.
const std::string &processDir() {
  static const std::string dir =
      ::testing::TempDir() + "/tokenizer-test-" + std::to_string(::getpid());
  return dir;
}

class RemoveProcessDir : public ::testing::Environment {
public:
  void TearDown() override {
    std::system(("rm -rf '" + processDir() + "'").c_str());
  }
};
[[maybe_unused]] ::testing::Environment *const kRemoveProcessDir =
    ::testing::AddGlobalTestEnvironment(new RemoveProcessDir);

/// A fresh, empty folder for one test.
std::string freshDir(const std::string &name) {
  std::string dir = processDir() + "/" + name;
  EXPECT_EQ(
      std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str()),
      0);
  return dir;
}

/// Runs a shell command, failing the test when it exits non-zero.
bool run(const std::string &command) {
  int status = std::system(command.c_str());
  EXPECT_EQ(status, 0) << command;
  return status == 0;
}

/// spm_train and spm_encode (Debian's sentencepiece): the tests train real
/// models with them.
bool haveSentencePieceTools() {
  return std::string(SYNTH_SPM_TRAIN).size() > 0 &&
         std::string(SYNTH_SPM_ENCODE).size() > 0;
}

/// The ASCII lines of `text` with runs of spaces squeezed and the ends
/// trimmed: what SentencePiece's default normalization keeps of a line, so
/// they round-trip exactly.
std::vector<std::string> normalizedLines(const std::string &text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::string out;
    bool ascii = true;
    for (char c : line) {
      ascii &= static_cast<unsigned char>(c) < 0x80 && c != '\t';
      if (c != ' ' || (!out.empty() && out.back() != ' ')) {
        out += c;
      }
    }
    while (!out.empty() && out.back() == ' ') {
      out.pop_back();
    }
    if (ascii && !out.empty()) {
      lines.push_back(out);
    }
  }
  return lines;
}

//===----------------------------------------------------------------------===//
// Bytes
//===----------------------------------------------------------------------===//

TEST(ByteTokenizer, EveryByteIsItsOwnIdAndRoundTrips) {
  ByteTokenizer bytes;
  EXPECT_EQ(bytes.vocabSize(), 256);
  EXPECT_EQ(bytes.kind(), TokenizerKind::Bytes);
  std::string all;
  for (int b = 0; b < 256; ++b) {
    all += static_cast<char>(b);
  }
  absl::StatusOr<std::vector<int32_t>> ids = bytes.encode(all);
  ASSERT_TRUE(ids.ok());
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ((*ids)[b], b);
  }
  absl::StatusOr<std::string> text = bytes.decode(*ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, all);
}

TEST(ByteTokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  ByteTokenizer bytes;
  EXPECT_EQ(bytes.decode({104, 105, 256}).status().message(),
            "token id 256 at index 2 is outside the vocabulary [0, 256)");
  EXPECT_EQ(bytes.decode({-1}).status().message(),
            "token id -1 at index 0 is outside the vocabulary [0, 256)");
}

//===----------------------------------------------------------------------===//
// SentencePiece: bad model files
//===----------------------------------------------------------------------===//

TEST(SentencePieceTokenizer, MissingModelIsAClearError) {
  auto missing = SentencePieceTokenizer::load("/nonexistent/spm.model");
  ASSERT_FALSE(missing.ok());
  std::string message(missing.status().message());
  EXPECT_NE(message.find("/nonexistent/spm.model: cannot "), std::string::npos)
      << message;
  if (SentencePieceTokenizer::available()) {
    EXPECT_NE(message.find("No such file or directory"), std::string::npos);
    EXPECT_NE(message.find("--tokenizer=sentencepiece"), std::string::npos);
  } else {
    EXPECT_NE(message.find("no SentencePiece support"), std::string::npos);
  }
}

TEST(SentencePieceTokenizer, CorruptModelsAreRejected) {
  if (!SentencePieceTokenizer::available()) {
    GTEST_SKIP() << "built without libsentencepiece";
  }
  std::string dir = freshDir("corrupt");
  const std::vector<std::pair<std::string, std::string>> corrupt = {
      {"empty.model", ""},
      {"text.model", "this is not a protocol buffer\n"},
      {"garbage.model", std::string("\xff\xff\xff\xff\x0f\x12\x80", 7)},
  };
  for (const auto &[name, bytes] : corrupt) {
    std::string path = dir + "/" + name;
    writeText(path, bytes);
    auto model = SentencePieceTokenizer::load(path);
    ASSERT_FALSE(model.ok()) << name;
    EXPECT_NE(std::string(model.status().message())
                  .find(path + ": not a SentencePiece model ("),
              std::string::npos)
        << model.status();
  }
}

//===----------------------------------------------------------------------===//
// SentencePiece: a real model trained on the project's documentation
//===----------------------------------------------------------------------===//

class SentencePieceModelTest : public ::testing::Test {
protected:
  static constexpr int kVocab = 300;

  static void SetUpTestSuite() {
    if (!haveSentencePieceTools() || !SentencePieceTokenizer::available()) {
      return;
    }
    dir_ = new std::string(freshDir("docs-model"));
    std::string corpus = *dir_ + "/docs.txt";
    writeText(corpus, readText(std::string(SYNTH_SOURCE_DIR) + "/README.md") +
                          readText(std::string(SYNTH_SOURCE_DIR) +
                                   "/docs/model-format.md"));
    // A few seconds at most: 18 KB of text, one thread.
    run(std::string(SYNTH_SPM_TRAIN) + " --input=" + corpus +
        " --model_prefix=" + *dir_ +
        "/docs --vocab_size=" + std::to_string(kVocab) +
        " --character_coverage=1.0 --num_threads=1 --minloglevel=2 "
        ">/dev/null 2>&1");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!haveSentencePieceTools() || !SentencePieceTokenizer::available()) {
      GTEST_SKIP() << "needs libsentencepiece and spm_train (Debian's "
                      "libsentencepiece-dev and sentencepiece)";
    }
    auto loaded = SentencePieceTokenizer::load(*dir_ + "/docs.model");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    model_ = std::move(*loaded);
  }

  static std::string *dir_;
  std::unique_ptr<SentencePieceTokenizer> model_;
};

std::string *SentencePieceModelTest::dir_ = nullptr;

TEST_F(SentencePieceModelTest, TextRoundTripsLineByLine) {
  EXPECT_EQ(model_->kind(), TokenizerKind::SentencePiece);
  EXPECT_EQ(model_->vocabSize(), kVocab);
  EXPECT_EQ(model_->lineEndId(), 2); // spm_train's default </s>
  std::vector<std::string> lines =
      normalizedLines(readText(std::string(SYNTH_SOURCE_DIR) + "/README.md"));
  ASSERT_GT(lines.size(), 20u);
  std::string text;
  for (const std::string &line : lines) {
    absl::StatusOr<std::vector<int32_t>> ids = model_->encode(line);
    ASSERT_TRUE(ids.ok()) << ids.status();
    absl::StatusOr<std::string> back = model_->decode(*ids);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, line);
    text += line + "\n";
  }
  // Several lines at once: each newline is one </s>.
  absl::StatusOr<std::vector<int32_t>> ids = model_->encode(text);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(std::count(ids->begin(), ids->end(), model_->lineEndId()),
            static_cast<long>(lines.size()));
  // Pieces of the text the model was trained on span several bytes.
  EXPECT_LT(ids->size() * 3, text.size() * 2);
  absl::StatusOr<std::string> back = model_->decode(*ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, text);
}

TEST_F(SentencePieceModelTest, EncodingMatchesSpmEncodeWithLineEnds) {
  // scripts/prepare_kjv.py encodes with the spm_encode tool, one line at a
  // time, and ends each line with </s>: the library must agree.
  std::string text = "In the beginning\n\nGod created the heaven and the "
                     "earth.\nsynthc compiles Synthesizer models\n";
  std::string input = *dir_ + "/lines.txt", output = *dir_ + "/lines.ids";
  writeText(input, text);
  ASSERT_TRUE(run(std::string(SYNTH_SPM_ENCODE) + " --model=" + *dir_ +
                  "/docs.model --output_format=id < " + input + " > " +
                  output));
  std::vector<int32_t> expected;
  std::stringstream rows(readText(output));
  for (std::string row; std::getline(rows, row);) {
    std::stringstream ids(row);
    for (int32_t id; ids >> id;) {
      expected.push_back(id);
    }
    expected.push_back(model_->lineEndId());
  }
  absl::StatusOr<std::vector<int32_t>> ids = model_->encode(text);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, expected);
  // The blank line is a lone </s>; text without a final newline has no
  // final </s>.
  absl::StatusOr<std::vector<int32_t>> prompt =
      model_->encode("In the beginning");
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(*prompt, std::vector<int32_t>(expected.begin(),
                                          expected.begin() + prompt->size()));
  EXPECT_EQ(expected[prompt->size()], model_->lineEndId());
  EXPECT_EQ(expected[prompt->size() + 1], model_->lineEndId());
  EXPECT_TRUE(model_->encode("")->empty());
}

TEST_F(SentencePieceModelTest, DecodeRejectsIdsOutsideTheVocabulary) {
  EXPECT_EQ(model_->decode({5, 6, kVocab}).status().message(),
            "token id 300 at index 2 is outside the vocabulary [0, 300)");
}

//===----------------------------------------------------------------------===//
// Prepared data folders
//===----------------------------------------------------------------------===//

TEST(PreparedData, BadFoldersAreClearErrors) {
  auto missing = synth::data::openPreparedData("/nonexistent/kjv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "/nonexistent/kjv: cannot open: No such file or directory "
            "(prepare a corpus with scripts/prepare_kjv.py OUT_DIR)");
  std::string dir = freshDir("bad-folders");
  writeText(dir + "/file", "x");
  EXPECT_EQ(synth::data::openPreparedData(dir + "/file").status().message(),
            dir + "/file: not a folder (expected one written by "
                  "scripts/prepare_kjv.py)");
  // spm.model without its vocabulary.
  writeText(dir + "/spm.model", "x");
  auto noVocab = synth::data::openPreparedData(dir);
  ASSERT_FALSE(noVocab.ok());
  EXPECT_NE(std::string(noVocab.status().message())
                .find(dir + "/spm.vocab: cannot open"),
            std::string::npos);
  writeText(dir + "/spm.vocab", "<unk>\t0\nbroken line\n");
  EXPECT_EQ(synth::data::openPreparedData(dir).status().message(),
            dir + "/spm.vocab:2: expected `piece<TAB>score`");
  // A byte folder whose splits are missing: the error comes when loading.
  std::string bytes = freshDir("byte-folder");
  auto data = synth::data::openPreparedData(bytes);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->kind, TokenizerKind::Bytes);
  auto train = synth::data::loadSplit(*data, Split::Train);
  ASSERT_FALSE(train.ok());
  EXPECT_NE(std::string(train.status().message())
                .find(bytes + "/train.txt: cannot open"),
            std::string::npos);
}

TEST(PreparedData, ByteFoldersGiveByteIds) {
  std::string dir = freshDir("bytes");
  writeText(dir + "/train.txt", "In the beginning\n");
  writeText(dir + "/heldout.txt", "Amen.\n");
  auto data = synth::data::openPreparedData(dir);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->kind, TokenizerKind::Bytes);
  EXPECT_EQ(data->vocabSize, 256);
  auto heldout = synth::data::loadSplit(*data, Split::HeldOut);
  ASSERT_TRUE(heldout.ok());
  EXPECT_EQ(*heldout, synth::data::byteIds("Amen.\n"));
  auto tokenizer = synth::data::openTokenizer(*data);
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ((*tokenizer)->kind(), TokenizerKind::Bytes);
  EXPECT_TRUE(
      synth::data::checkModelVocabulary(*data, TokenizerKind::Bytes, 256).ok());
  EXPECT_EQ(
      synth::data::checkModelVocabulary(*data, TokenizerKind::SentencePiece,
                                        4000)
          .message(),
      "vocabulary mismatch: the model's is sentencepiece (4000 ids) but " +
          dir +
          " holds bytes (256 ids); a model for this data needs "
          "\"vocab\": {\"kind\": \"bytes\"}");
}

/// scripts/prepare_kjv.py --tokenizer=sentencepiece on four chapters of Ruth
/// (two held out), prepared once for the tests below.
class PreparedSentencePieceTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    if (!haveSentencePieceTools()) {
      return;
    }
    dir_ = new std::string(freshDir("ruth"));
    run(std::string(SYNTH_PYTHON3) +
        " " SYNTH_SOURCE_DIR "/scripts/prepare_kjv.py " + *dir_ +
        " --vpl " SYNTH_SOURCE_DIR "/test/data/Inputs/ruth.vpl "
        "--held-out 0.33 --tokenizer=sentencepiece --vocab-size 200 "
        ">/dev/null");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!haveSentencePieceTools()) {
      GTEST_SKIP() << "needs spm_train and spm_encode (Debian's sentencepiece)";
    }
    auto data = synth::data::openPreparedData(*dir_);
    ASSERT_TRUE(data.ok()) << data.status();
    data_ = *data;
  }

  static std::string *dir_;
  PreparedData data_;
};

std::string *PreparedSentencePieceTest::dir_ = nullptr;

TEST_F(PreparedSentencePieceTest, IdsLoadWithOrWithoutTheLibrary) {
  // The vocabulary size comes from spm.vocab, so ids need no libsentencepiece.
  EXPECT_EQ(data_.kind, TokenizerKind::SentencePiece);
  EXPECT_EQ(data_.vocabSize, 200);
  EXPECT_EQ(data_.trainPath, *dir_ + "/train.ids.npy");
  EXPECT_EQ(data_.heldoutPath, *dir_ + "/heldout.ids.npy");
  auto train = synth::data::loadSplit(data_, Split::Train);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_GT(train->size(), 1000u);
  auto tokenizer = synth::data::openTokenizer(data_);
  if (SentencePieceTokenizer::available()) {
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  } else {
    EXPECT_EQ(tokenizer.status().message(),
              *dir_ + "/spm.model: cannot load: this build of synthc has no "
                      "SentencePiece support (libsentencepiece was not found "
                      "when it was configured; install Debian's "
                      "libsentencepiece-dev and configure again)");
  }
}

TEST_F(PreparedSentencePieceTest, IdsAreTheTokenizersEncodingOfTheText) {
  if (!SentencePieceTokenizer::available()) {
    GTEST_SKIP() << "built without libsentencepiece";
  }
  auto tokenizer = synth::data::openTokenizer(data_);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocabSize(), 200);
  for (auto [split, text] : {std::pair{Split::Train, "/train.txt"},
                             std::pair{Split::HeldOut, "/heldout.txt"}}) {
    auto ids = synth::data::loadSplit(data_, split);
    ASSERT_TRUE(ids.ok()) << ids.status();
    std::string original = readText(*dir_ + text);
    auto encoded = (*tokenizer)->encode(original);
    ASSERT_TRUE(encoded.ok());
    EXPECT_EQ(*ids, *encoded) << text;
    if (split == Split::Train) {
      // Every character of the training text has a piece: exact round trip.
      auto decoded = (*tokenizer)->decode(*ids);
      ASSERT_TRUE(decoded.ok());
      EXPECT_EQ(*decoded, original);
      EXPECT_EQ(std::count(ids->begin(), ids->end(), 0), 0) << "no <unk>";
    } else {
      // The held-out chapters have letters (q, x) the training text lacks:
      // the model never saw them.
      EXPECT_GT(std::count(ids->begin(), ids->end(), 0), 0);
    }
  }
}

TEST_F(PreparedSentencePieceTest, ModelVocabularyMustMatch) {
  EXPECT_TRUE(synth::data::checkModelVocabulary(
                  data_, TokenizerKind::SentencePiece, 200)
                  .ok());
  EXPECT_EQ(synth::data::checkModelVocabulary(
                data_, TokenizerKind::SentencePiece, 4096)
                .message(),
            "vocabulary mismatch: the model's is sentencepiece (4096 ids) "
            "but " +
                *dir_ +
                " holds sentencepiece (200 ids) (spm.vocab); a model for this "
                "data needs \"vocab\": {\"kind\": \"sentencepiece\", "
                "\"size\": 200}");
  EXPECT_FALSE(
      synth::data::checkModelVocabulary(data_, TokenizerKind::Bytes, 256).ok());
}

TEST_F(PreparedSentencePieceTest, MixedPreparationsAreDetected) {
  // A vocabulary file of another preparation: its size disagrees with the
  // model's.
  std::string dir = freshDir("mixed");
  ASSERT_TRUE(
      run("cp " + *dir_ + "/spm.model " + *dir_ + "/train.ids.npy " + dir));
  writeText(dir + "/spm.vocab", "<unk>\t0\n<s>\t0\n</s>\t0\n");
  auto data = synth::data::openPreparedData(dir);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->vocabSize, 3);
  if (SentencePieceTokenizer::available()) {
    EXPECT_EQ(synth::data::openTokenizer(*data).status().message(),
              dir + "/spm.model: 200 pieces, but " + dir +
                  "/spm.vocab lists 3 (files of two preparations? prepare "
                  "the folder again)");
  }
  // ... and the ids are checked against the smaller vocabulary.
  auto train = synth::data::loadSplit(*data, Split::Train);
  ASSERT_FALSE(train.ok());
  EXPECT_NE(std::string(train.status().message())
                .find(dir + "/train.ids.npy: token id "),
            std::string::npos);
  EXPECT_NE(std::string(train.status().message())
                .find(" is outside the vocabulary [0, 3)"),
            std::string::npos);
}

} // namespace
