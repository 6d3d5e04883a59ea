//===- TextDataTest.cpp - text corpora and language-model batches ---------===//

#include "runtime/TextData.h"

#include "gtest/gtest.h"

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

namespace {

using synth::data::Batch;
using synth::data::ByteBatcher;
using synth::data::kIgnoreTarget;

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

} // namespace
