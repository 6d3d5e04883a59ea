//===- ExecutorTest.cpp - running the toy artifact's real Halide kernels --===//
//
// Every result is compared with the same math written as plain loops over
// the artifact's own weights (see make_test_artifact.cpp for the kernels).
// Float sums run in the same order in both (the kernels reduce sequentially),
// so the tolerance only absorbs FMA contraction: 1e-5 relative.
//
//===----------------------------------------------------------------------===//

#include "runtime/Executor.h"

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cmath>
#include <thread>

namespace {

namespace rt = synth::rt;
using synth::DType;
using synth::Tensor;
using synth::test::copyToyArtifact;
using synth::test::readText;
using synth::test::replaceOnce;
using synth::test::ScratchDir;
using synth::test::writeText;

constexpr int B = 2, N = 8, D = 16, V = 256;

class ExecutorTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto loaded = rt::Artifact::load(synth::test::kToyArtifact);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    artifact = std::move(*loaded);
  }

  std::unique_ptr<rt::Session>
  session(const std::string &entry,
          std::shared_ptr<const synth::safetensors::File> weights = nullptr) {
    auto created = rt::Session::create(*artifact, entry, std::move(weights));
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? std::move(*created) : nullptr;
  }

  static Tensor tokens(int seed) {
    Tensor t = Tensor::zeros(DType::I32, {B, N});
    for (int i = 0; i < B * N; ++i) {
      t.data<int32_t>()[i] = (i * 37 + seed * 101) % V;
    }
    return t;
  }

  const float *param(const synth::safetensors::File &w,
                     const std::string &name) {
    return w.find(name)->data<float>();
  }

  /// h[b,n,d] = embed[tok, d] * norm[d] + 1, as plain loops.
  std::vector<float> hidden(const Tensor &tok,
                            const synth::safetensors::File &w) {
    const float *embed = param(w, "embed.weight");
    const float *norm = param(w, "norm.weight");
    std::vector<float> h(B * N * D);
    for (int r = 0; r < B * N; ++r) {
      int t = std::clamp(tok.data<int32_t>()[r], 0, V - 1);
      for (int d = 0; d < D; ++d) {
        h[r * D + d] = embed[t * D + d] * norm[d] + 1.0f;
      }
    }
    return h;
  }

  std::vector<float> logits(const Tensor &tok,
                            const synth::safetensors::File &w) {
    std::vector<float> h = hidden(tok, w);
    const float *head = param(w, "lm_head.weight");
    std::vector<float> out(B * N * V);
    for (int r = 0; r < B * N; ++r) {
      for (int v = 0; v < V; ++v) {
        float sum = 0.0f;
        for (int d = 0; d < D; ++d) {
          sum += h[r * D + d] * head[d * V + v];
        }
        out[r * V + v] = sum;
      }
    }
    return out;
  }

  static void expectClose(const float *got, const std::vector<float> &want) {
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-5 * std::abs(want[i]) + 1e-6)
          << "element " << i;
    }
  }

  std::unique_ptr<rt::Artifact> artifact;
};

TEST_F(ExecutorTest, ForwardMatchesLoops) {
  auto s = session("forward");
  ASSERT_NE(s, nullptr);
  for (int seed : {0, 1, 2}) {
    Tensor tok = tokens(seed);
    ASSERT_TRUE(s->setInput("tokens", tok).ok());
    absl::Status status = s->run();
    ASSERT_TRUE(status.ok()) << status;
    absl::StatusOr<Tensor> out = s->output("logits");
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->shape, (std::vector<int64_t>{B, N, V}));
    expectClose(out->data<float>(), logits(tok, *artifact->weights()));
  }
}

TEST_F(ExecutorTest, PooledMaskUsesU8AndBool) {
  auto s = session("pool");
  ASSERT_NE(s, nullptr);
  Tensor tok = tokens(3);
  Tensor mask = Tensor::zeros(DType::Bool, {B, N});
  for (int n = 0; n < 5; ++n) {
    mask.bytes[n] = 1; // row 0: first 5 positions; row 1: all masked
  }
  ASSERT_TRUE(s->setInput("tokens", tok).ok());
  ASSERT_TRUE(s->setInput("mask", mask).ok()); // Bool accepted for U8
  ASSERT_TRUE(s->run().ok());
  absl::StatusOr<Tensor> pooled = s->output("pooled");
  ASSERT_TRUE(pooled.ok());
  std::vector<float> h = hidden(tok, *artifact->weights());
  std::vector<float> want(B * D, 0.0f);
  for (int d = 0; d < D; ++d) {
    float sum = 0.0f;
    for (int n = 0; n < 5; ++n) {
      sum += h[n * D + d];
    }
    want[d] = sum / 5.0f;
  }
  expectClose(pooled->data<float>(), want); // row 1 stays exactly zero

  mask.bytes[3] = 2;
  mask.dtype = DType::U8;
  EXPECT_EQ(s->setInput("mask", mask).message(),
            "input \"mask\": element 3 is 2, but a U8 mask holds 0 or 1");
}

TEST_F(ExecutorTest, LossIsAScalar) {
  auto s = session("loss");
  ASSERT_NE(s, nullptr);
  Tensor tok = tokens(4);
  Tensor targets = tokens(5);
  targets.data<int32_t>()[2] = -100; // ignored positions
  targets.data<int32_t>()[9] = -100;
  ASSERT_TRUE(s->setInput("tokens", tok).ok());
  ASSERT_TRUE(s->setInput("targets", targets).ok());
  ASSERT_TRUE(s->run().ok());
  absl::StatusOr<Tensor> loss = s->output("loss");
  ASSERT_TRUE(loss.ok());
  EXPECT_TRUE(loss->shape.empty());
  std::vector<float> z = logits(tok, *artifact->weights());
  double total = 0;
  int count = 0;
  for (int r = 0; r < B * N; ++r) {
    int target = targets.data<int32_t>()[r];
    if (target == -100) {
      continue;
    }
    double max = z[r * V];
    for (int v = 0; v < V; ++v) {
      max = std::max<double>(max, z[r * V + v]);
    }
    double sum = 0;
    for (int v = 0; v < V; ++v) {
      sum += std::exp(z[r * V + v] - max);
    }
    total += max + std::log(sum) - z[r * V + target];
    ++count;
  }
  EXPECT_NEAR(loss->data<float>()[0], total / count, 1e-4 * total / count);
}

TEST_F(ExecutorTest, CallerProvidedWeights) {
  auto weights =
      std::make_shared<synth::safetensors::File>(*artifact->weights());
  for (int d = 0; d < D; ++d) {
    weights->find("norm.weight")->data<float>()[d] = -2.0f + d;
  }
  auto s = session("forward", weights);
  ASSERT_NE(s, nullptr);
  Tensor tok = tokens(6);
  ASSERT_TRUE(s->setInput("tokens", tok).ok());
  ASSERT_TRUE(s->run().ok());
  expectClose(s->output("logits")->data<float>(), logits(tok, *weights));

  // Back to the artifact's weights on the same session.
  ASSERT_TRUE(s->setWeights(artifact->weights()).ok());
  ASSERT_TRUE(s->run().ok());
  expectClose(s->output("logits")->data<float>(),
              logits(tok, *artifact->weights()));

  auto wrong = std::make_shared<synth::safetensors::File>(*weights);
  *wrong->find("lm_head.weight") = Tensor::zeros(DType::F32, {256, 16});
  EXPECT_EQ(s->setWeights(wrong).message(),
            "weights: parameter \"lm_head.weight\" has shape [256, 16], "
            "expected [16, 256]");
  auto created = rt::Session::create(*artifact, "forward", wrong);
  EXPECT_FALSE(created.ok());
}

TEST_F(ExecutorTest, InputErrors) {
  auto s = session("pool");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->setInput("tokenz", tokens(0)).message(),
            "entry pool has no input \"tokenz\" (its inputs: tokens, mask)");
  EXPECT_EQ(s->setInput("tokens", Tensor::zeros(DType::F32, {B, N})).message(),
            "input \"tokens\" of entry pool is I32 [2, 8], got F32 [2, 8]");
  EXPECT_EQ(
      s->setInput("tokens", Tensor::zeros(DType::I32, {B, N + 1})).message(),
      "input \"tokens\" of entry pool is I32 [2, 8], got I32 [2, 9]");
  int32_t few[3] = {};
  EXPECT_EQ(
      s->setInput("tokens", DType::I32, {B, N}, few, sizeof(few)).message(),
      "input \"tokens\": 12 bytes given, I32 [2, 8] needs 64");
  ASSERT_TRUE(s->setInput("tokens", tokens(0)).ok());
  EXPECT_EQ(s->run().message(), "input \"mask\" of entry pool was not set");
  EXPECT_EQ(s->output("pooled").status().message(),
            "output \"pooled\" of entry pool: no successful run yet");
  EXPECT_EQ(s->output("logits").status().message(),
            "entry pool has no output \"logits\" (its outputs: pooled)");
  EXPECT_EQ(rt::Session::create(*artifact, "train_step").status().message(),
            synth::test::kToyArtifact +
                ": no entry point \"train_step\" (the artifact has: forward, "
                "pool, loss)");
}

TEST_F(ExecutorTest, TimingHooks) {
  auto s = session("loss");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->setInput("tokens", tokens(0)).ok());
  ASSERT_TRUE(s->setInput("targets", tokens(1)).ok());
  std::vector<double> seconds;
  std::vector<std::string> seen;
  rt::RunOptions options;
  options.callSeconds = &seconds;
  options.onCall = [&](size_t index, const rt::CallInfo &call, double t) {
    EXPECT_EQ(index, seen.size());
    EXPECT_GE(t, 0.0);
    seen.push_back(call.kernel);
  };
  ASSERT_TRUE(s->run(options).ok());
  ASSERT_EQ(seconds.size(), 3u);
  for (double t : seconds) {
    EXPECT_GT(t, 0.0);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"toy_k0_embed_scale",
                                            "toy_k1_logits", "toy_k3_xent"}));
}

TEST_F(ExecutorTest, ThreadCountDoesNotChangeResults) {
  auto s = session("forward");
  ASSERT_NE(s, nullptr);
  Tensor tok = tokens(7);
  ASSERT_TRUE(s->setInput("tokens", tok).ok());
  std::vector<Tensor> results;
  for (int threads : {1, 2, 4, 0}) {
    ASSERT_TRUE(artifact->setNumThreads(threads).ok());
    ASSERT_TRUE(s->run().ok());
    results.push_back(*s->output("logits"));
  }
  for (const Tensor &t : results) {
    EXPECT_EQ(t.bytes, results[0].bytes);
  }
}

TEST_F(ExecutorTest, SessionsRunConcurrently) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto s = rt::Session::create(*artifact, "forward");
      if (!s.ok()) {
        failures[t] = 1;
        return;
      }
      Tensor tok = tokens(t);
      std::vector<float> want = logits(tok, *artifact->weights());
      for (int i = 0; i < 20; ++i) {
        if (!(*s)->setInput("tokens", tok).ok() || !(*s)->run().ok()) {
          failures[t] = 1;
          return;
        }
        absl::StatusOr<Tensor> out = (*s)->output("logits");
        if (!out.ok()) {
          failures[t] = 1;
          return;
        }
        const float *got = out->data<float>();
        for (size_t j = 0; j < want.size(); ++j) {
          if (std::abs(got[j] - want[j]) > 1e-5 * std::abs(want[j]) + 1e-6) {
            failures[t] = 1;
            return;
          }
        }
      }
    });
  }
  for (std::thread &t : threads) {
    t.join();
  }
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

/// The toy manifest with `entry` (JSON text) added to its entry points.
std::string withExtraEntry(const std::string &dir, const std::string &entry) {
  std::string path = dir + "/manifest.json";
  std::string text = replaceOnce(readText(path), "\"entries\": {\n",
                                 "\"entries\": {\n" + entry + ",\n");
  writeText(path, text);
  return dir;
}

TEST(ExecutorPoison, UnwrittenOutputsStayNaN) {
  ScratchDir scratch;
  // "never" is an output that kernels only read (k2 takes it as h), so
  // nothing writes it: it must come back poisoned, and so must what k2
  // computed from it; "h", written by k0, must not.
  std::string dir = withExtraEntry(copyToyArtifact(scratch.path()), R"(
    "partial": {
      "inputs": [{"name": "tokens", "buffer": 0}, {"name": "mask", "buffer": 6}],
      "outputs": [{"name": "h", "buffer": 3}, {"name": "never", "buffer": 4},
                  {"name": "pooled", "buffer": 5}],
      "buffers": [
        {"shape": [2, 8], "dtype": "I32", "storage": "input"},
        {"shape": [256, 16], "dtype": "F32", "storage": "param", "name": "embed.weight"},
        {"shape": [16], "dtype": "F32", "storage": "param", "name": "norm.weight"},
        {"shape": [2, 8, 16], "dtype": "F32", "storage": "output"},
        {"shape": [2, 8, 16], "dtype": "F32", "storage": "output"},
        {"shape": [2, 16], "dtype": "F32", "storage": "output"},
        {"shape": [2, 8], "dtype": "U8", "storage": "input"}
      ],
      "arena_bytes": 0,
      "calls": [
        {"kernel": "toy_k0_embed_scale", "buffers": [0, 1, 2, 3], "flops": 0, "bytes": 0},
        {"kernel": "toy_k2_masked_mean", "buffers": [4, 6, 5], "flops": 0, "bytes": 0}
      ]
    })");
  auto artifact = rt::Artifact::load(dir);
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  auto s = rt::Session::create(**artifact, "partial");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->setInput("tokens", Tensor::zeros(DType::I32, {2, 8})).ok());
  Tensor mask = Tensor::zeros(DType::U8, {2, 8});
  std::fill(mask.bytes.begin(), mask.bytes.end(), 1);
  ASSERT_TRUE((*s)->setInput("mask", mask).ok());
  for (int run = 0; run < 2; ++run) {
    ASSERT_TRUE((*s)->run().ok());
    for (const char *name : {"never", "pooled"}) {
      Tensor t = *(*s)->output(name);
      for (int64_t i = 0; i < t.numel(); ++i) {
        ASSERT_TRUE(std::isnan(t.data<float>()[i])) << name << " " << i;
      }
    }
    Tensor h = *(*s)->output("h");
    for (int64_t i = 0; i < h.numel(); ++i) {
      ASSERT_FALSE(std::isnan(h.data<float>()[i])) << i;
    }
  }
}

TEST(ExecutorKernelError, HalideErrorBecomesStatus) {
  ScratchDir scratch;
  // k1 reduces over h's 16 columns and reads that many rows of head, but this
  // plan gives it a head of 8 rows: the kernel's bounds check fails, and the
  // runtime reports Halide's message instead of aborting.
  std::string dir = withExtraEntry(copyToyArtifact(scratch.path()), R"(
    "broken": {
      "inputs": [],
      "outputs": [{"name": "logits", "buffer": 2}],
      "buffers": [
        {"shape": [2, 8, 16], "dtype": "F32", "storage": "arena", "offset": 0},
        {"shape": [8, 256], "dtype": "F32", "storage": "arena", "offset": 1024},
        {"shape": [2, 8, 256], "dtype": "F32", "storage": "output"}
      ],
      "arena_bytes": 9216,
      "calls": [{"kernel": "toy_k1_logits", "buffers": [0, 1, 2], "flops": 0, "bytes": 0}]
    })");
  auto artifact = rt::Artifact::load(dir);
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  auto s = rt::Session::create(**artifact, "broken");
  ASSERT_TRUE(s.ok()) << s.status();
  absl::Status status = (*s)->run();
  ASSERT_FALSE(status.ok());
  std::string message(status.message());
  EXPECT_EQ(message.rfind(dir + ": entry broken, call 0 (kernel toy_k1_logits) "
                                "failed with Halide error -",
                          0),
            0u)
      << message;
  EXPECT_NE(message.find("Input buffer head is accessed at 15, which is "
                         "beyond the max (7) in dimension 1"),
            std::string::npos)
      << message;
  EXPECT_FALSE((*s)->output("logits").ok());
}

} // namespace
