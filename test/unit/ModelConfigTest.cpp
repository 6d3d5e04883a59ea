//===- ModelConfigTest.cpp - model description parsing and validation -----===//
//
// Valid descriptions parse to the expected configuration; each malformed one
// gets exactly the documented error (file:line:column: json path: what).
//
//===----------------------------------------------------------------------===//

#include "frontend/ModelConfig.h"
#include "frontend/Parameters.h"

#include "gtest/gtest.h"

#include <string>

namespace {

using synth::AttentionKind;
using synth::ModelConfig;
using synth::parseModelConfig;

/// A valid lm description with `extra` spliced in after the opening brace
/// (keys given in `extra` must not repeat the base keys).
std::string lm(const std::string &attention = R"({"kind": "random"})",
               const std::string &extra = "") {
  return "{" + extra + R"(
  "task": "lm", "d_model": 32, "heads": 4, "layers": 2, "ffn": 64,
  "max_len": 16, "vocab": {"kind": "bytes"},
  "attention": )" +
         attention + "\n}";
}

TEST(ModelConfig, ParsesEveryField) {
  absl::StatusOr<ModelConfig> config = parseModelConfig(R"({
    "name": "tiny", "task": "seq2seq", "d_model": 64, "heads": 4,
    "encoder_layers": 2, "decoder_layers": 3, "ffn": 128, "max_len": 32,
    "vocab": {"kind": "sentencepiece", "size": 1000}, "norm": "post",
    "activation": "gelu", "tie_embeddings": true, "seed": 7, "dropout": 0,
    "layer_norm_epsilon": 1e-6,
    "attention": {"kind": "mixture", "parts": [{"kind": "random", "trainable": false},
                                                {"kind": "factorized_dense", "a": 4, "b": 8}]},
    "attention_overrides": [{"stack": "decoder", "layers": [0, 2],
                             "attention": {"kind": "factorized_random", "rank": 2}}]
  })",
                                                        "m.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "tiny");
  EXPECT_EQ(config->task, synth::Task::Seq2Seq);
  EXPECT_EQ(config->headDim(), 16);
  EXPECT_EQ(config->encoderLayers(), 2);
  EXPECT_EQ(config->decoderLayers(), 3);
  EXPECT_TRUE(config->sentencePiece);
  EXPECT_EQ(config->vocabSize, 1000);
  EXPECT_EQ(config->norm, synth::NormPlacement::Post);
  EXPECT_EQ(config->activation, synth::Activation::Gelu);
  EXPECT_TRUE(config->tieEmbeddings);
  EXPECT_EQ(config->seed, 7u);
  EXPECT_DOUBLE_EQ(config->layerNormEpsilon, 1e-6);
  EXPECT_EQ(config->encoderAttention[1].describe(),
            "mixture(random(fixed)+factorized_dense)");
  EXPECT_EQ(config->encoderAttention[1].parts[1].hidden, 16); // default k = d
  EXPECT_EQ(config->decoderAttention[0].kind, AttentionKind::FactorizedRandom);
  EXPECT_EQ(config->decoderAttention[0].rank, 2);
  EXPECT_EQ(config->decoderAttention[1].kind, AttentionKind::Mixture);
  EXPECT_EQ(config->decoderAttention[2].kind, AttentionKind::FactorizedRandom);
}

TEST(ModelConfig, Defaults) {
  absl::StatusOr<ModelConfig> config =
      parseModelConfig(lm(R"({"kind": "factorized_random"})"), "m.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->norm, synth::NormPlacement::Pre);
  EXPECT_EQ(config->activation, synth::Activation::Relu);
  EXPECT_FALSE(config->tieEmbeddings);
  EXPECT_EQ(config->vocabSize, 256);
  EXPECT_EQ(config->decoderAttention.size(), 2u);
  EXPECT_EQ(config->decoderAttention[0].rank, 8);
  EXPECT_TRUE(config->encoderAttention.empty());
}

struct BadCase {
  const char *label;
  std::string text;
  const char *error;
};

class MalformedDescription : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedDescription, IsRejectedWithItsMessage) {
  const BadCase &bad = GetParam();
  absl::StatusOr<ModelConfig> config = parseModelConfig(bad.text, "m.json");
  ASSERT_FALSE(config.ok()) << bad.label << " was accepted";
  EXPECT_EQ(std::string(config.status().message()), bad.error) << bad.label;
}

// Line and column count from the start of the text; lm() puts the base keys
// on lines 2-4 and the attention value on line 4, column 16.
INSTANTIATE_TEST_SUITE_P(
    Validation, MalformedDescription,
    ::testing::Values(
        BadCase{"invalid_json", "{\"task\": \"lm\",\n  \"heads\" 4}",
                "m.json:2:11: expected ':' after key \"heads\", got '4'"},
        BadCase{"trailing_comma", "{\"task\": \"lm\",}",
                "m.json:1:15: expected a quoted object key, got '}'"},
        BadCase{"not_an_object", "[1, 2]",
                "m.json:1:1: (top level): expected an object, got array"},
        BadCase{"duplicate_key", "{\"task\": \"lm\", \"task\": \"lm\"}",
                "m.json:1:16: duplicate key \"task\""},
        BadCase{"missing_task", "{\"d_model\": 32}",
                "m.json:1:1: (top level): missing required key \"task\" (one "
                "of \"lm\", \"encoder\", \"seq2seq\")"},
        BadCase{"unknown_task",
                lm().replace(lm().find("\"task\": \"lm\""), 12,
                             "\"task\": \"gpt\""),
                "m.json:2:11: task: expected one of \"lm\", \"encoder\", "
                "\"seq2seq\", got \"gpt\""},
        BadCase{"wrong_type",
                lm("{\"kind\": \"dot\"}")
                    .replace(lm("{\"kind\": \"dot\"}").find("\"d_model\": 32"),
                             13, "\"d_model\": \"32\""),
                "m.json:2:28: d_model: expected a positive integer (model "
                "width), got \"32\""},
        BadCase{"negative_heads",
                lm().replace(lm().find("\"heads\": 4"), 10, "\"heads\": -4"),
                "m.json:2:41: heads: expected a positive integer (attention "
                "heads), got -4"},
        BadCase{"heads_do_not_divide",
                lm().replace(lm().find("\"heads\": 4"), 10, "\"heads\": 5"),
                "m.json:2:41: heads: d_model 32 is not divisible by heads 5"},
        BadCase{"fractional_layers",
                lm().replace(lm().find("\"layers\": 2"), 11, "\"layers\": 2.5"),
                "m.json:2:54: layers: expected a positive integer (number of "
                "layers), got 2.5"},
        BadCase{"unknown_key", lm("{\"kind\": \"dot\"}", "\"dropuot\": 0,"),
                "m.json:1:13: dropuot: unknown key (expected one of: "
                "activation, attention, attention_overrides, d_model, "
                "decoder_layers, dropout, encoder_layers, ffn, heads, "
                "layer_norm_epsilon, layers, max_len, name, norm, "
                "num_classes, pooling, seed, task, tie_embeddings, vocab)"},
        BadCase{
            "dropout_nonzero", lm("{\"kind\": \"dot\"}", "\"dropout\": 0.1,"),
            "m.json:1:13: dropout: dropout 0.1 is not supported yet: only 0 "
            "is (set it to 0 or remove it)"},
        BadCase{"unknown_attention", lm("{\"kind\": \"sparse\"}"),
                "m.json:4:25: attention.kind: expected one of \"dot\", "
                "\"dense\", \"random\", \"factorized_random\", "
                "\"factorized_dense\", \"mixture\", got \"sparse\""},
        BadCase{"attention_not_object", lm("\"random\""),
                "m.json:4:16: attention: expected an object, got \"random\""},
        BadCase{"bad_rank",
                lm("{\"kind\": \"factorized_random\", \"rank\": -3}"),
                "m.json:4:54: attention.rank: expected a positive integer "
                "(rank r of R1 R2^T), got -3"},
        BadCase{
            "factorized_dense_product",
            lm("{\"kind\": \"factorized_dense\", \"a\": 4, \"b\": 8}"),
            "m.json:4:58: attention.b: a * b must equal max_len L = 16, got "
            "4 * 8 = 32"},
        BadCase{"factorized_dense_missing_a",
                lm("{\"kind\": \"factorized_dense\", \"b\": 4}"),
                "m.json:4:16: attention: missing required key \"a\" (a, with "
                "a*b = L)"},
        BadCase{"empty_mixture", lm("{\"kind\": \"mixture\", \"parts\": []}"),
                "m.json:4:45: attention.parts: a mixture needs at least two "
                "parts, got 0"},
        BadCase{"nested_mixture",
                lm("{\"kind\": \"mixture\", \"parts\": [{\"kind\": \"dot\"}, "
                   "{\"kind\": \"mixture\", \"parts\": []}]}"),
                "m.json:4:72: attention.parts[1].kind: a mixture cannot "
                "contain another mixture"},
        BadCase{"duplicate_mixture_part",
                lm("{\"kind\": \"mixture\", \"parts\": [{\"kind\": \"dot\"}, "
                   "{\"kind\": \"dot\"}]}"),
                "m.json:4:63: attention.parts[1]: attention kind \"dot\" "
                "appears twice in the mixture (its parameters would have the "
                "same names)"},
        BadCase{"unknown_attention_key",
                lm("{\"kind\": \"random\", \"trainable\": false, \"rank\": 2}"),
                "m.json:4:63: attention.rank: unknown key (expected one of: "
                "kind, trainable)"},
        BadCase{"trainable_not_bool",
                lm("{\"kind\": \"random\", \"trainable\": 0}"),
                "m.json:4:48: attention.trainable: expected true or false, got "
                "0"},
        BadCase{"byte_vocab_size",
                lm().replace(lm().find("{\"kind\": \"bytes\"}"), 17,
                             "{\"kind\": \"bytes\", \"size\": 300}"),
                "m.json:3:53: vocab.size: a byte vocabulary has exactly 256 "
                "entries, got 300"},
        BadCase{"override_out_of_range",
                lm("{\"kind\": \"dot\"}",
                   "\"attention_overrides\": [{\"layers\": [2], \"attention\": "
                   "{\"kind\": \"dense\"}}],"),
                "m.json:1:38: attention_overrides[0].layers[0]: expected a "
                "layer index in [0, 2), got 2"},
        BadCase{"stack_on_lm",
                lm("{\"kind\": \"dot\"}",
                   "\"attention_overrides\": [{\"stack\": \"decoder\", "
                   "\"layers\": [0], \"attention\": {\"kind\": \"dense\"}}],"),
                "m.json:1:36: attention_overrides[0].stack: \"stack\" is only "
                "for seq2seq models (this model has one stack of layers)"},
        BadCase{"layers_on_seq2seq",
                R"({"task": "seq2seq", "d_model": 32, "heads": 4, "layers": 2,
                    "ffn": 64, "max_len": 16, "vocab": {"kind": "bytes"},
                    "attention": {"kind": "dot"}})",
                "m.json:1:58: layers: seq2seq models take \"encoder_layers\" "
                "and \"decoder_layers\" instead of \"layers\""},
        BadCase{"encoder_without_classes",
                R"({"task": "encoder", "d_model": 32, "heads": 4, "layers": 2,
                    "ffn": 64, "max_len": 16, "vocab": {"kind": "bytes"},
                    "attention": {"kind": "dot"}})",
                "m.json:1:1: (top level): missing required key "
                "\"num_classes\" (classes of the classifier)"},
        BadCase{"classes_on_lm",
                lm("{\"kind\": \"dot\"}", "\"num_classes\": 3,"),
                "m.json:1:17: num_classes: \"num_classes\" is only for encoder "
                "(classifier) models"},
        BadCase{"unterminated_string", "{\"task\": \"lm",
                "m.json:1:13: unterminated string"},
        BadCase{"negative_seed", lm("{\"kind\": \"dot\"}", "\"seed\": -1,"),
                "m.json:1:10: seed: expected a non-negative integer, got -1"},
        BadCase{"bad_norm",
                lm("{\"kind\": \"dot\"}", "\"norm\": \"sandwich\","),
                "m.json:1:10: norm: expected one of \"pre\", \"post\", got "
                "\"sandwich\""}),
    [](const ::testing::TestParamInfo<BadCase> &info) {
      return std::string(info.param.label);
    });

TEST(Parameters, TableAndDeterministicInit) {
  absl::StatusOr<ModelConfig> config = parseModelConfig(
      lm(R"({"kind": "mixture", "parts": [{"kind": "random", "trainable": false}, {"kind": "dot"}]})",
         "\"tie_embeddings\": true,"),
      "m.json");
  ASSERT_TRUE(config.ok()) << config.status();
  std::vector<synth::ParamInfo> table = synth::parameterTable(*config);
  std::vector<std::string> names;
  for (const synth::ParamInfo &p : table) {
    names.push_back(p.name);
  }
  ASSERT_GE(names.size(), 6u);
  EXPECT_EQ(names[0], "embed.weight");
  EXPECT_EQ(names[1], "pos.weight");
  EXPECT_EQ(names[4], "layers.0.attn.mixture.logits");
  EXPECT_EQ(names[5], "layers.0.attn.random.R");
  EXPECT_FALSE(table[5].trainable);
  EXPECT_EQ(table[5].shape, (std::vector<int64_t>{4, 16, 16}));
  EXPECT_EQ(names.back(), "final_norm.bias"); // tied: no lm_head.weight

  synth::safetensors::File a = synth::initializeParameters(table, 1);
  synth::safetensors::File b = synth::initializeParameters(table, 1);
  synth::safetensors::File c = synth::initializeParameters(table, 2);
  EXPECT_EQ(a.find("layers.0.attn.random.R")->bytes,
            b.find("layers.0.attn.random.R")->bytes);
  EXPECT_NE(a.find("layers.0.attn.random.R")->bytes,
            c.find("layers.0.attn.random.R")->bytes);
  // Glorot over [16, 16]: every value within +-sqrt(6 / 32), not all equal.
  const synth::Tensor *r = a.find("layers.0.attn.random.R");
  float limit = std::sqrt(6.0f / 32.0f), lo = limit, hi = -limit;
  for (int64_t i = 0; i < r->numel(); ++i) {
    lo = std::min(lo, r->data<float>()[i]);
    hi = std::max(hi, r->data<float>()[i]);
  }
  EXPECT_GE(lo, -limit);
  EXPECT_LE(hi, limit);
  EXPECT_LT(lo, -0.5f * limit);
  EXPECT_GT(hi, 0.5f * limit);
  EXPECT_TRUE(synth::checkParameters(a, table, "w").ok());
}

TEST(Parameters, CheckRejectsMismatchedWeights) {
  absl::StatusOr<ModelConfig> config = parseModelConfig(lm(), "m.json");
  ASSERT_TRUE(config.ok());
  std::vector<synth::ParamInfo> table = synth::parameterTable(*config);
  synth::safetensors::File weights = synth::initializeParameters(table, 1);

  synth::safetensors::File missing = weights;
  missing.tensors.erase(missing.tensors.begin() + 3);
  EXPECT_EQ(synth::checkParameters(missing, table, "w.safetensors").message(),
            "w.safetensors: missing parameter \"layers.0.attn_norm.bias\" of "
            "shape [32]");

  synth::safetensors::File extra = weights;
  extra.add("layers.9.attn.random.R",
            synth::Tensor::zeros(synth::DType::F32, {1}));
  EXPECT_EQ(synth::checkParameters(extra, table, "w.safetensors").message(),
            "w.safetensors: unexpected tensor \"layers.9.attn.random.R\" (not "
            "a parameter of this model)");

  synth::safetensors::File reshaped = weights;
  reshaped.find("pos.weight")->shape = {32, 16};
  EXPECT_EQ(synth::checkParameters(reshaped, table, "w.safetensors").message(),
            "w.safetensors: parameter \"pos.weight\" has shape [32, 16], "
            "expected [16, 32]");

  synth::safetensors::File retyped = weights;
  retyped.find("embed.weight")->dtype = synth::DType::BF16;
  EXPECT_EQ(synth::checkParameters(retyped, table, "w.safetensors").message(),
            "w.safetensors: parameter \"embed.weight\" has dtype BF16, "
            "expected F32");
}

} // namespace
