//===- ReferenceGradientTest.cpp - reference vs finite differences --------===//
//
// The reference's backward pass is written by hand, so it is checked against
// central finite differences of its own loss in double precision, for every
// trainable parameter of every test model (test/reference/configs). Also:
// masks (causality, padding), the all-ignored loss, a query that sees no key,
// and the errors returned for bad inputs.
//
//===----------------------------------------------------------------------===//

#include "test/reference/Reference.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

using namespace synth;
using namespace synth::reference;

namespace {

/// The test models, one per variant (see CMakeLists.txt).
const char *const kConfigs[] = {"lm_dot",
                                "lm_dense",
                                "lm_random",
                                "lm_fixed_random",
                                "lm_factorized_random",
                                "lm_factorized_dense",
                                "lm_random_dot",
                                "lm_dense_dot",
                                "lm_random_dense",
                                "lm_post_gelu_tied",
                                "encoder",
                                "seq2seq",
                                "seq2seq_post_tied"};

ModelConfig loadConfig(const std::string &name) {
  absl::StatusOr<ModelConfig> config = loadModelConfig(
      std::string(SYNTH_REFERENCE_CONFIG_DIR) + "/" + name + ".json");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : ModelConfig();
}

/// Initial weights moved by uniform(-0.3, 0.3) noise: zero biases, unit norm
/// weights and zero mixture logits would make mistakes in their gradients
/// (or in where they enter the forward pass) invisible.
ArrayMap randomParameters(const ModelConfig &config, uint64_t seed) {
  std::vector<ParamInfo> table = parameterTable(config);
  absl::StatusOr<ArrayMap> params =
      loadParameters(initializeParameters(table, seed), table);
  EXPECT_TRUE(params.ok()) << params.status();
  SplitMix64 rng(seed + 7);
  for (auto &[name, array] : *params) {
    for (double &value : array.data) {
      value += 0.3 * (2.0 * rng.uniform() - 1.0);
    }
  }
  return *params;
}

/// A batch shorter than max_len (so the slicing of dense, random and
/// factorized scores to N matters), with N_source != N_target for seq2seq.
Batch testBatch(const ModelConfig &config, uint64_t seed) {
  int64_t len = config.maxLen;
  return makeRandomBatch(config, /*batch=*/2, len - 1, len - 2, len - 1, seed);
}

Result run(const ModelConfig &config, const ArrayMap &params,
           const Batch &batch, bool withGradients = true) {
  absl::StatusOr<Result> result =
      evaluate(config, params, batch, withGradients);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : Result();
}

double maxAbs(const std::vector<double> &values) {
  double m = 0.0;
  for (double v : values) {
    m = std::max(m, std::abs(v));
  }
  return m;
}

//===----------------------------------------------------------------------===//
// Gradients against finite differences
//===----------------------------------------------------------------------===//

class ReferenceGradient : public ::testing::TestWithParam<const char *> {};

/// For each trainable parameter, the coordinate with the largest gradient and
/// two pseudo-random ones: (L(w + h) - L(w - h)) / 2h with h = 1e-6 must
/// match the hand-written gradient to 1e-6 of the tensor's largest gradient.
TEST_P(ReferenceGradient, MatchesCentralFiniteDifferences) {
  ModelConfig config = loadConfig(GetParam());
  ArrayMap params = randomParameters(config, 11);
  Batch batch = testBatch(config, 12);
  Result result = run(config, params, batch);
  ASSERT_TRUE(std::isfinite(result.loss));

  constexpr double kStep = 1e-5, kTolerance = 1e-6;
  SplitMix64 pick(13);
  int checked = 0;
  double worst = 0.0;
  for (const ParamInfo &info : parameterTable(config)) {
    auto grad = result.gradients.find(info.name);
    if (!info.trainable) {
      EXPECT_EQ(grad, result.gradients.end())
          << info.name << " is not trainable but has a gradient";
      continue;
    }
    ASSERT_NE(grad, result.gradients.end()) << info.name << " has no gradient";
    const std::vector<double> &g = grad->second.data;
    double scale = maxAbs(g);
    EXPECT_GT(scale, 0.0) << info.name << ": the gradient is all zeros";
    size_t largest = std::max_element(g.begin(), g.end(),
                                      [](double a, double b) {
                                        return std::abs(a) < std::abs(b);
                                      }) -
                     g.begin();
    for (size_t index : {largest, static_cast<size_t>(pick.next() % g.size()),
                         static_cast<size_t>(pick.next() % g.size())}) {
      ArrayMap shifted = params;
      double &w = shifted.at(info.name).data[index];
      double original = w;
      w = original + kStep;
      double plus = run(config, shifted, batch, false).loss;
      w = original - kStep;
      double minus = run(config, shifted, batch, false).loss;
      double fd = (plus - minus) / (2.0 * kStep);
      worst = std::max(worst, std::abs(fd - g[index]) / std::max(scale, 1e-3));
      EXPECT_LE(std::abs(fd - g[index]), kTolerance * std::max(scale, 1e-3))
          << info.name << "[" << index << "]: hand-written " << g[index]
          << ", finite difference " << fd << " (largest |grad| " << scale
          << ")";
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
  std::printf("%s: %d coordinates, worst |fd - grad| / max|grad| = %.2e\n",
              GetParam(), checked, worst);
}

/// Forward-only evaluation computes the same numbers.
TEST_P(ReferenceGradient, ForwardOnlyAgrees) {
  ModelConfig config = loadConfig(GetParam());
  ArrayMap params = randomParameters(config, 21);
  Batch batch = testBatch(config, 22);
  Result full = run(config, params, batch);
  Result forward = run(config, params, batch, false);
  EXPECT_EQ(full.loss, forward.loss);
  EXPECT_EQ(full.logits.data, forward.logits.data);
  EXPECT_TRUE(forward.gradients.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Configs, ReferenceGradient, ::testing::ValuesIn(kConfigs),
    [](const ::testing::TestParamInfo<const char *> &info) {
      return std::string(info.param);
    });

//===----------------------------------------------------------------------===//
// Masks
//===----------------------------------------------------------------------===//

class ReferenceMasks : public ::testing::TestWithParam<const char *> {};

/// Logits at `position` of every batch row, for [B, N, V] logits.
std::vector<double> logitsAt(const Array &logits, int64_t position) {
  int64_t n = logits.shape[1], v = logits.shape[2];
  std::vector<double> out;
  for (int64_t b = 0; b < logits.shape[0]; ++b) {
    auto begin = logits.data.begin() + (b * n + position) * v;
    out.insert(out.end(), begin, begin + v);
  }
  return out;
}

/// What a token may not see must not change the output: later tokens under
/// causal attention, padded tokens under key padding.
TEST_P(ReferenceMasks, HiddenTokensDoNotChangeTheOutput) {
  ModelConfig config = loadConfig(GetParam());
  ArrayMap params = randomParameters(config, 31);
  Batch batch = testBatch(config, 32);
  Result before = run(config, params, batch, false);
  Batch changed = batch;
  auto flip = [&](int32_t &token) {
    token = (token + 1) % static_cast<int32_t>(config.vocabSize);
  };
  switch (config.task) {
  case Task::LM: {
    int64_t n = batch.seqLen;
    for (int64_t b = 0; b < batch.batch; ++b) {
      flip(changed.tokens[b * n + n - 1]);
    }
    Result after = run(config, params, changed, false);
    for (int64_t i = 0; i + 1 < n; ++i) {
      EXPECT_EQ(logitsAt(before.logits, i), logitsAt(after.logits, i))
          << "position " << i << " sees the last token";
    }
    EXPECT_NE(logitsAt(before.logits, n - 1), logitsAt(after.logits, n - 1));
    break;
  }
  case Task::Encoder:
  case Task::Seq2Seq: {
    bool encoder = config.task == Task::Encoder;
    int64_t len = encoder ? batch.seqLen : batch.srcLen;
    std::vector<uint8_t> &mask = encoder ? changed.mask : changed.sourceMask;
    std::vector<int32_t> &tokens = encoder ? changed.tokens : changed.source;
    // Row 0: pad all but the first token, then change every padded one.
    std::fill(mask.begin(), mask.begin() + len, 0);
    mask[0] = 1;
    Result padded = run(config, params, changed, false);
    for (int64_t i = 1; i < len; ++i) {
      flip(tokens[i]);
    }
    Result after = run(config, params, changed, false);
    EXPECT_EQ(padded.logits.data, after.logits.data)
        << "a padded token changed the output";
    flip(tokens[0]);
    Result real = run(config, params, changed, false);
    EXPECT_NE(padded.logits.data, real.logits.data);
    break;
  }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, ReferenceMasks, ::testing::ValuesIn(kConfigs),
    [](const ::testing::TestParamInfo<const char *> &info) {
      return std::string(info.param);
    });

/// A query that sees no key outputs zeros: with an all-padding source, the
/// decoder gets nothing from the encoder, so no encoder or cross-attention
/// parameter gets a gradient, and the output is finite.
TEST(ReferenceAttention, QueryWithoutVisibleKeysOutputsZero) {
  ModelConfig config = loadConfig("seq2seq");
  ArrayMap params = randomParameters(config, 41);
  Batch batch = makeRandomBatch(config, 1, 0, 10, 9, 42);
  std::fill(batch.sourceMask.begin(), batch.sourceMask.end(), 0);
  Result result = run(config, params, batch);
  ASSERT_TRUE(std::isfinite(result.loss));
  for (double v : result.logits.data) {
    ASSERT_TRUE(std::isfinite(v));
  }
  for (const auto &[name, grad] : result.gradients) {
    // (The config is pre-norm, so cross_norm feeds only the cut scores.)
    bool cut = name.rfind("encoder.", 0) == 0 ||
               name.find("cross_attn.") != std::string::npos ||
               name.find("cross_norm.") != std::string::npos;
    if (cut) {
      EXPECT_EQ(maxAbs(grad.data), 0.0) << name;
    } else {
      EXPECT_GT(maxAbs(grad.data), 0.0) << name;
      for (double v : grad.data) {
        ASSERT_TRUE(std::isfinite(v)) << name;
      }
    }
  }
  // The output equals that of a source the decoder cannot see at all: any
  // other source gives the same logits.
  Batch other = batch;
  for (int32_t &token : other.source) {
    token = (token + 7) % 256;
  }
  EXPECT_EQ(run(config, params, other, false).logits.data, result.logits.data);
}

//===----------------------------------------------------------------------===//
// Loss corner cases and errors
//===----------------------------------------------------------------------===//

TEST(ReferenceLoss, AllIgnoredTargetsGiveZeroLossAndGradients) {
  for (const char *name : {"lm_dot", "seq2seq"}) {
    ModelConfig config = loadConfig(name);
    ArrayMap params = randomParameters(config, 51);
    Batch batch = testBatch(config, 52);
    std::vector<int32_t> &targets =
        config.task == Task::LM ? batch.targets : batch.targetOut;
    std::fill(targets.begin(), targets.end(), kIgnoreTarget);
    Result result = run(config, params, batch);
    EXPECT_EQ(result.loss, 0.0) << name;
    EXPECT_TRUE(std::isfinite(result.loss)) << name;
    for (const auto &[param, grad] : result.gradients) {
      EXPECT_EQ(maxAbs(grad.data), 0.0) << name << ": " << param;
    }
  }
}

TEST(ReferenceLoss, IgnoredTargetsDoNotCount) {
  // Loss over a batch with one ignored target equals the mean of the others.
  ModelConfig config = loadConfig("lm_dot");
  ArrayMap params = randomParameters(config, 53);
  Batch batch = makeRandomBatch(config, 1, 4, 0, 0, 54);
  batch.targets = {1, 2, 3, 4};
  Result all = run(config, params, batch, false);
  batch.targets[2] = kIgnoreTarget;
  Result three = run(config, params, batch, false);
  // The per-position losses from the logits: -log softmax(logits_i)[t_i].
  auto nll = [&](int64_t i, int32_t target) {
    std::vector<double> row = logitsAt(all.logits, i);
    double max = *std::max_element(row.begin(), row.end()), sum = 0.0;
    for (double v : row) {
      sum += std::exp(v - max);
    }
    return max + std::log(sum) - row[target];
  };
  EXPECT_NEAR(all.loss, (nll(0, 1) + nll(1, 2) + nll(2, 3) + nll(3, 4)) / 4,
              1e-12);
  EXPECT_NEAR(three.loss, (nll(0, 1) + nll(1, 2) + nll(3, 4)) / 3, 1e-12);
}

/// Runs `mutate` on a valid lm batch and expects an InvalidArgument error
/// whose message contains `expected`.
template <typename Mutate>
void expectRejected(const char *configName, Mutate mutate,
                    const std::string &expected) {
  ModelConfig config = loadConfig(configName);
  ArrayMap params = randomParameters(config, 61);
  Batch batch = testBatch(config, 62);
  mutate(config, params, batch);
  absl::StatusOr<Result> result = evaluate(config, params, batch);
  ASSERT_FALSE(result.ok())
      << "accepted; expected an error with \"" << expected << "\"";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find(expected), std::string::npos)
      << result.status();
}

TEST(ReferenceErrors, SequenceLongerThanMaxLenIsRejected) {
  auto longer = [](int64_t by) {
    return [by](const ModelConfig &c, ArrayMap &, Batch &b) {
      b = makeRandomBatch(c, 2, c.maxLen + by, c.maxLen + by, 3, 1);
    };
  };
  expectRejected("lm_random", longer(1),
                 "sequence length 9 exceeds the model's max_len L = 8");
  expectRejected("encoder", longer(5),
                 "sequence length 21 exceeds the model's max_len L = 16");
  expectRejected("seq2seq", longer(1),
                 "source length 17 exceeds the model's max_len L = 16");
}

TEST(ReferenceErrors, BadInputsAreRejected) {
  expectRejected(
      "lm_dot",
      [](const ModelConfig &, ArrayMap &, Batch &b) { b.tokens[3] = 256; },
      "tokens[3] = 256 is outside [0, 256)");
  expectRejected(
      "lm_dot",
      [](const ModelConfig &, ArrayMap &, Batch &b) { b.targets[0] = -5; },
      "targets[0] = -5 is outside [0, 256) (and is not -100)");
  expectRejected(
      "lm_dot",
      [](const ModelConfig &, ArrayMap &, Batch &b) { b.targets.pop_back(); },
      "targets has 29 entries, expected 30");
  expectRejected(
      "encoder",
      [](const ModelConfig &, ArrayMap &, Batch &b) { b.labels[1] = 5; },
      "labels[1] = 5 is outside [0, 5)");
  expectRejected(
      "encoder",
      [](const ModelConfig &, ArrayMap &, Batch &b) { b.mask[2] = 2; },
      "mask[2] = 2 (masks hold 0 or 1)");
  expectRejected(
      "lm_dot", [](const ModelConfig &, ArrayMap &, Batch &b) { b.batch = 0; },
      "batch must be positive");
}

TEST(ReferenceErrors, BadParametersAreRejected) {
  expectRejected(
      "lm_dense",
      [](const ModelConfig &, ArrayMap &p, Batch &) {
        p.erase("layers.0.attn.dense.w2");
      },
      "missing parameter \"layers.0.attn.dense.w2\" of shape [2, 12, 16]");
  expectRejected(
      "lm_dense",
      [](const ModelConfig &, ArrayMap &p, Batch &) {
        p["pos.weight"] = Array::zeros({8, 32});
      },
      "parameter \"pos.weight\" has shape [8, 32], expected [16, 32]");
  expectRejected(
      "lm_dense",
      [](const ModelConfig &, ArrayMap &p, Batch &) {
        p["lm_head.bias"] = Array::zeros({256});
      },
      "unexpected parameter \"lm_head.bias\"");
}

} // namespace
