//===- TextDataTest.cpp - text corpora and language-model batches ---------===//

#include "runtime/TextData.h"
#include "runtime/Npy.h"

#include "gtest/gtest.h"

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

namespace {

using synth::data::Batch;
using synth::data::ByteBatcher;
using synth::data::kIgnoreTarget;
using synth::data::TokenBatcher;

std::string writeTemp(const std::string &name, const std::string &bytes) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(TextData, LoadRejectsMissingEmptyAndBinaryFiles) {
  auto missing = synth::data::loadTextCorpus("/nonexistent/train.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message())
                .find("/nonexistent/train.txt: cannot open"),
            std::string::npos);
  EXPECT_NE(std::string(missing.status().message()).find("prepare_kjv.py"),
            std::string::npos);
  std::string empty = writeTemp("empty.txt", "");
  EXPECT_EQ(synth::data::loadTextCorpus(empty).status().message(),
            empty + ": empty corpus (no bytes to train or evaluate on)");
  std::string binary = writeTemp("binary.txt", std::string("ab\0cd", 5));
  EXPECT_EQ(synth::data::loadTextCorpus(binary).status().message(),
            binary + ": binary data (a NUL byte at offset 2); expected a text "
                     "corpus");
  auto text = synth::data::loadTextCorpus(writeTemp("ok.txt", "hello"));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hello");
}

/// Row `row` of a batch as (tokens, targets).
std::pair<std::vector<int>, std::vector<int>> row(const Batch &b, int64_t r) {
  int64_t n = b.tokens.shape[1];
  std::vector<int> tokens(b.tokens.data<int32_t>() + r * n,
                          b.tokens.data<int32_t>() + (r + 1) * n);
  std::vector<int> targets(b.targets.data<int32_t>() + r * n,
                           b.targets.data<int32_t>() + (r + 1) * n);
  return {tokens, targets};
}

TEST(TextData, TargetsAreTheNextBytesAndTheEndIsPadded) {
  // 10 bytes, windows of 4: starts 0, 4, 8; the last has one real target.
  std::vector<Batch> batches =
      synth::data::evaluationBatches("abcdefghij", /*batch=*/2, /*seqLen=*/4);
  ASSERT_EQ(batches.size(), 2u);
  auto [t0, y0] = row(batches[0], 0);
  EXPECT_EQ(t0, (std::vector<int>{'a', 'b', 'c', 'd'}));
  EXPECT_EQ(y0, (std::vector<int>{'b', 'c', 'd', 'e'}));
  auto [t1, y1] = row(batches[0], 1);
  EXPECT_EQ(y1, (std::vector<int>{'f', 'g', 'h', 'i'}));
  auto [t2, y2] = row(batches[1], 0);
  EXPECT_EQ(t2, (std::vector<int>{'i', 'j', 0, 0}));
  EXPECT_EQ(
      y2, (std::vector<int>{'j', kIgnoreTarget, kIgnoreTarget, kIgnoreTarget}));
  auto [t3, y3] = row(batches[1], 1); // an unused row: all padding
  EXPECT_EQ(y3, std::vector<int>(4, kIgnoreTarget));
  EXPECT_EQ(batches[0].realTargets + batches[1].realTargets, 9);
}

TEST(TextData, EpochsVisitEveryWindowInASeededOrder) {
  std::string text(1000, 'x');
  for (size_t i = 0; i < text.size(); ++i) {
    text[i] = static_cast<char>('a' + i % 26);
  }
  ByteBatcher a(text, 5, 10, /*seed=*/7), b(text, 5, 10, /*seed=*/7),
      c(text, 5, 10, /*seed=*/8);
  EXPECT_EQ(a.examplesPerEpoch(), 100);
  std::set<int> firstBytes;
  bool differs = false;
  for (int step = 0; step < 20; ++step) { // one epoch
    Batch x = a.next(), y = b.next(), z = c.next();
    EXPECT_EQ(x.tokens.bytes, y.tokens.bytes);
    differs |= x.tokens.bytes != z.tokens.bytes;
    for (int64_t r = 0; r < 5; ++r) {
      firstBytes.insert(x.tokens.data<int32_t>()[r * 10]);
    }
  }
  EXPECT_TRUE(differs) << "another seed gives another order";
  EXPECT_EQ(a.state().epoch, 0u);
  EXPECT_EQ(a.state().position, 100u);
  a.next();
  EXPECT_EQ(a.state().epoch, 1u);
}

TEST(TextData, RestoringTheStateResumesTheExactStream) {
  std::string text(5000, ' ');
  for (size_t i = 0; i < text.size(); ++i) {
    text[i] = static_cast<char>(' ' + (i * 7919) % 90);
  }
  ByteBatcher original(text, 4, 16, 3);
  for (int i = 0; i < 100; ++i) { // past the first epoch (313 windows)
    original.next();
  }
  ByteBatcher::State saved = original.state();
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) {
    Batch b = original.next();
    expected.emplace_back(b.tokens.bytes.begin(), b.tokens.bytes.end());
  }
  ByteBatcher resumed(text, 4, 16, 3);
  resumed.restore(saved);
  for (int i = 0; i < 10; ++i) {
    Batch b = resumed.next();
    EXPECT_EQ(std::string(b.tokens.bytes.begin(), b.tokens.bytes.end()),
              expected[i])
        << "batch " << i;
  }
}

/// Writes `tensor` as .npy and returns its path.
std::string writeNpy(const std::string &name, const synth::Tensor &tensor) {
  std::string path = ::testing::TempDir() + "/" + name;
  EXPECT_TRUE(synth::npy::write(path, tensor).ok());
  return path;
}

synth::Tensor idTensor(const std::vector<int32_t> &ids) {
  synth::Tensor t = synth::Tensor::zeros(synth::DType::I32,
                                         {static_cast<int64_t>(ids.size())});
  std::copy(ids.begin(), ids.end(), t.data<int32_t>());
  return t;
}

TEST(TokenCorpus, LoadRejectsMissingEmptyAndMalformedFiles) {
  auto missing = synth::data::loadTokenCorpus("/nonexistent/train.ids.npy", 8);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "/nonexistent/train.ids.npy: cannot open: No such file or "
            "directory (prepare a corpus with scripts/prepare_kjv.py OUT_DIR "
            "--tokenizer=sentencepiece)");
  std::string empty = writeTemp("empty.ids.npy", "");
  EXPECT_EQ(synth::data::loadTokenCorpus(empty, 8).status().message(),
            empty + ": empty file (expected a .npy array of token ids)");
  std::string text = writeTemp("text.ids.npy", "1 2 3\n");
  EXPECT_EQ(synth::data::loadTokenCorpus(text, 8).status().message(),
            text + ": not a .npy file (no \\x93NUMPY magic)");
  std::string noIds = writeNpy("none.ids.npy", idTensor({}));
  EXPECT_EQ(synth::data::loadTokenCorpus(noIds, 8).status().message(),
            noIds + ": empty corpus (no token ids to train or evaluate on)");
  synth::Tensor wide = synth::Tensor::zeros(synth::DType::I64, {4});
  std::string i64 = writeNpy("i64.ids.npy", wide);
  EXPECT_EQ(synth::data::loadTokenCorpus(i64, 8).status().message(),
            i64 + ": token ids must be int32, got I64 (save them with "
                  "numpy.asarray(ids, dtype=numpy.int32))");
  std::string f32 =
      writeNpy("f32.ids.npy", synth::Tensor::zeros(synth::DType::F32, {4}));
  EXPECT_NE(std::string(synth::data::loadTokenCorpus(f32, 8).status().message())
                .find("token ids must be int32, got F32"),
            std::string::npos);
  std::string matrix = writeNpy(
      "matrix.ids.npy", synth::Tensor::zeros(synth::DType::I32, {2, 3}));
  EXPECT_EQ(synth::data::loadTokenCorpus(matrix, 8).status().message(),
            matrix + ": token ids must be a 1-D array, got shape [2, 3]");
}

TEST(TokenCorpus, EveryIdMustBeInTheVocabulary) {
  std::string path = writeNpy("ids.npy", idTensor({0, 7, 3, 8, 1}));
  EXPECT_EQ(synth::data::loadTokenCorpus(path, 8).status().message(),
            path + ": token id 8 at index 3 is outside the vocabulary [0, 8)");
  std::string negative = writeNpy("negative.ids.npy", idTensor({0, -1}));
  EXPECT_EQ(synth::data::loadTokenCorpus(negative, 8).status().message(),
            negative +
                ": token id -1 at index 1 is outside the vocabulary [0, 8)");
  auto ids = synth::data::loadTokenCorpus(path, 9);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int32_t>{0, 7, 3, 8, 1}));
}

TEST(TokenCorpus, BatchesOfIdsBeyondBytesWithPaddingMasks) {
  // Ids of a 4096-piece vocabulary, windows of 3 at 0, 3 and 6; the last
  // window and the unused row after it are padding.
  std::vector<int32_t> ids = {4000, 17, 2, 3095, 300, 2, 4095, 1};
  std::vector<Batch> batches =
      synth::data::evaluationBatches(ids, /*batch=*/2, /*seqLen=*/3);
  ASSERT_EQ(batches.size(), 2u);
  auto [t0, y0] = row(batches[0], 0);
  EXPECT_EQ(t0, (std::vector<int>{4000, 17, 2}));
  EXPECT_EQ(y0, (std::vector<int>{17, 2, 3095}));
  auto [t1, y1] = row(batches[0], 1);
  EXPECT_EQ(y1, (std::vector<int>{300, 2, 4095}));
  auto [t2, y2] = row(batches[1], 0);
  EXPECT_EQ(t2, (std::vector<int>{4095, 1, 0}));
  EXPECT_EQ(y2, (std::vector<int>{1, kIgnoreTarget, kIgnoreTarget}));
  EXPECT_EQ(batches[0].mask.dtype, synth::DType::U8);
  EXPECT_EQ(batches[0].mask.shape, (std::vector<int64_t>{2, 3}));
  const uint8_t *mask = batches[0].mask.data<uint8_t>();
  EXPECT_EQ(std::vector<int>(mask, mask + 6), std::vector<int>(6, 1));
  mask = batches[1].mask.data<uint8_t>();
  EXPECT_EQ(std::vector<int>(mask, mask + 6),
            (std::vector<int>{1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(batches[0].realTargets + batches[1].realTargets, 7);
}

TEST(TokenCorpus, ACorpusWithoutTargetsGivesPaddingOnly) {
  TokenBatcher single({42}, 2, 4, 1);
  EXPECT_EQ(single.examplesPerEpoch(), 0);
  Batch b = single.next();
  EXPECT_EQ(b.realTargets, 0);
  EXPECT_EQ(b.mask.bytes, std::vector<uint8_t>(8, 0));
}

TEST(TokenCorpus, ByteBatchesAreTokenBatchesOfTheBytes) {
  std::string text(3000, ' ');
  for (size_t i = 0; i < text.size(); ++i) {
    text[i] = static_cast<char>(' ' + (i * 31) % 90);
  }
  ByteBatcher bytes(text, 3, 20, 11);
  TokenBatcher tokens(synth::data::byteIds(text), 3, 20, 11);
  for (int i = 0; i < 60; ++i) { // past the first epoch (150 windows)
    Batch a = bytes.next(), b = tokens.next();
    ASSERT_EQ(a.tokens.bytes, b.tokens.bytes) << "batch " << i;
    ASSERT_EQ(a.targets.bytes, b.targets.bytes) << "batch " << i;
    ASSERT_EQ(a.mask.bytes, b.mask.bytes) << "batch " << i;
  }
  EXPECT_EQ(bytes.state().epoch, tokens.state().epoch);
  EXPECT_EQ(bytes.state().position, tokens.state().position);
}

TEST(TokenCorpus, RestoringATokenBatcherResumesTheExactStream) {
  std::vector<int32_t> ids(7000);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>((i * 7919) % 4096);
  }
  TokenBatcher original(ids, 4, 32, 5);
  for (int i = 0; i < 70; ++i) { // into the second epoch (219 windows)
    original.next();
  }
  TokenBatcher::State saved = original.state();
  EXPECT_EQ(saved.epoch, 1u);
  TokenBatcher resumed(ids, 4, 32, 5);
  resumed.restore(saved);
  for (int i = 0; i < 70; ++i) { // and on into the third
    Batch a = original.next(), b = resumed.next();
    ASSERT_EQ(a.tokens.bytes, b.tokens.bytes) << "batch " << i;
    ASSERT_EQ(a.targets.bytes, b.targets.bytes) << "batch " << i;
  }
  EXPECT_EQ(resumed.state().epoch, 2u);
}

} // namespace
