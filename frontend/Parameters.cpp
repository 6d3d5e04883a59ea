//===- Parameters.cpp - parameter table, initialization, checks -----------===//
//
// The naming scheme and initializers are documented in docs/model-format.md;
// change both together.
//
//===----------------------------------------------------------------------===//

#include "frontend/Parameters.h"

#include "absl/strings/str_cat.h"

#include <cmath>
#include <cstdio>
#include <set>

namespace synth {

int64_t ParamInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    n *= d;
  }
  return n;
}

std::string ParamInfo::initDescription() const {
  char buffer[64];
  switch (init) {
  case InitKind::Zeros:
    return "zeros";
  case InitKind::Ones:
    return "ones";
  case InitKind::Normal:
    std::snprintf(buffer, sizeof(buffer), "normal(0, %g)", scale);
    return buffer;
  case InitKind::Uniform:
    std::snprintf(buffer, sizeof(buffer), "uniform(+-%.4g)", scale);
    return buffer;
  }
  return "?";
}

namespace {

/// Standard deviation of embeddings and projection weights (as GPT-2).
constexpr double kProjectionStd = 0.02;

class TableBuilder {
public:
  explicit TableBuilder(const ModelConfig &config) : c(config) {}

  void normal(const std::string &name, std::vector<int64_t> shape) {
    table.push_back(
        {name, std::move(shape), true, InitKind::Normal, kProjectionStd});
  }
  void zeros(const std::string &name, std::vector<int64_t> shape) {
    table.push_back({name, std::move(shape), true, InitKind::Zeros, 0.0});
  }
  /// Glorot-uniform over a [fanIn, fanOut] matrix (per head).
  void glorot(const std::string &name, std::vector<int64_t> shape,
              int64_t fanIn, int64_t fanOut, bool trainable = true) {
    double limit = std::sqrt(6.0 / static_cast<double>(fanIn + fanOut));
    table.push_back(
        {name, std::move(shape), trainable, InitKind::Uniform, limit});
  }
  void layerNorm(const std::string &prefix) {
    table.push_back({prefix + ".weight", {c.dModel}, true, InitKind::Ones, 0});
    zeros(prefix + ".bias", {c.dModel});
  }

  /// Score-function parameters of one (non-mixture) attention kind.
  void scoreParams(const std::string &attn, const AttentionSpec &spec) {
    int64_t H = c.heads, D = c.dModel, L = c.maxLen;
    switch (spec.kind) {
    case AttentionKind::Dot:
      normal(attn + ".dot.q.weight", {D, D});
      normal(attn + ".dot.k.weight", {D, D});
      break;
    case AttentionKind::Dense: {
      int64_t k = spec.hidden;
      glorot(attn + ".dense.w1", {H, D, k}, D, k);
      zeros(attn + ".dense.b1", {H, k});
      glorot(attn + ".dense.w2", {H, k, L}, k, L);
      zeros(attn + ".dense.b2", {H, L});
      break;
    }
    case AttentionKind::Random:
      glorot(attn + ".random.R", {H, L, L}, L, L, spec.trainable);
      break;
    case AttentionKind::FactorizedRandom:
      glorot(attn + ".factorized_random.R1", {H, L, spec.rank}, L, spec.rank);
      glorot(attn + ".factorized_random.R2", {H, L, spec.rank}, L, spec.rank);
      break;
    case AttentionKind::FactorizedDense: {
      int64_t k = spec.hidden;
      std::string p = attn + ".factorized_dense";
      glorot(p + ".w1", {H, D, k}, D, k);
      zeros(p + ".b1", {H, k});
      glorot(p + ".wa", {H, k, spec.a}, k, spec.a);
      zeros(p + ".ba", {H, spec.a});
      glorot(p + ".wb", {H, k, spec.b}, k, spec.b);
      zeros(p + ".bb", {H, spec.b});
      break;
    }
    case AttentionKind::Mixture:
      break;
    }
  }

  void selfAttention(const std::string &layer, const AttentionSpec &spec) {
    std::string attn = layer + "attn";
    if (spec.kind == AttentionKind::Mixture) {
      zeros(attn + ".mixture.logits",
            {c.heads, static_cast<int64_t>(spec.parts.size())});
      for (const AttentionSpec &part : spec.parts) {
        scoreParams(attn, part);
      }
    } else {
      scoreParams(attn, spec);
    }
    normal(attn + ".v.weight", {c.dModel, c.dModel});
    normal(attn + ".o.weight", {c.dModel, c.dModel});
  }

  void feedForward(const std::string &layer) {
    layerNorm(layer + "ffn_norm");
    normal(layer + "ffn.w1.weight", {c.dModel, c.ffn});
    zeros(layer + "ffn.w1.bias", {c.ffn});
    normal(layer + "ffn.w2.weight", {c.ffn, c.dModel});
    zeros(layer + "ffn.w2.bias", {c.dModel});
  }

  void stack(const std::string &prefix,
             const std::vector<AttentionSpec> &attention, bool cross) {
    for (size_t i = 0; i < attention.size(); ++i) {
      std::string layer = absl::StrCat(prefix, "layers.", i, ".");
      layerNorm(layer + "attn_norm");
      selfAttention(layer, attention[i]);
      if (cross) {
        layerNorm(layer + "cross_norm");
        for (const char *w : {"q", "k", "v", "o"}) {
          normal(absl::StrCat(layer, "cross_attn.", w, ".weight"),
                 {c.dModel, c.dModel});
        }
      }
      feedForward(layer);
    }
    // Pre-norm stacks end with a normalization; post-norm ones already did.
    if (c.norm == NormPlacement::Pre) {
      layerNorm(prefix + "final_norm");
    }
  }

  std::vector<ParamInfo> build() {
    normal("embed.weight", {c.vocabSize, c.dModel});
    normal("pos.weight", {c.maxLen, c.dModel});
    switch (c.task) {
    case Task::LM:
      stack("", c.decoderAttention, /*cross=*/false);
      break;
    case Task::Encoder:
      stack("", c.encoderAttention, /*cross=*/false);
      normal("classifier.weight", {c.dModel, c.numClasses});
      zeros("classifier.bias", {c.numClasses});
      break;
    case Task::Seq2Seq:
      stack("encoder.", c.encoderAttention, /*cross=*/false);
      stack("decoder.", c.decoderAttention, /*cross=*/true);
      break;
    }
    if (c.task != Task::Encoder && !c.tieEmbeddings) {
      normal("lm_head.weight", {c.dModel, c.vocabSize});
    }
    return std::move(table);
  }

private:
  const ModelConfig &c;
  std::vector<ParamInfo> table;
};

} // namespace

std::vector<ParamInfo> parameterTable(const ModelConfig &config) {
  return TableBuilder(config).build();
}

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double SplitMix64::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

double SplitMix64::normal() {
  // 1 - u is in (0, 1], so the log is finite.
  double u1 = 1.0 - uniform();
  double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t fnv1a64(const std::string &text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

safetensors::File initializeParameters(const std::vector<ParamInfo> &table,
                                       uint64_t seed) {
  safetensors::File file;
  for (const ParamInfo &param : table) {
    Tensor tensor = Tensor::zeros(DType::F32, param.shape);
    float *data = tensor.data<float>();
    SplitMix64 rng(seed ^ fnv1a64(param.name));
    for (int64_t i = 0; i < tensor.numel(); ++i) {
      switch (param.init) {
      case InitKind::Zeros:
        data[i] = 0.0f;
        break;
      case InitKind::Ones:
        data[i] = 1.0f;
        break;
      case InitKind::Normal:
        data[i] = static_cast<float>(param.scale * rng.normal());
        break;
      case InitKind::Uniform:
        data[i] = static_cast<float>(param.scale * (2.0 * rng.uniform() - 1.0));
        break;
      }
    }
    file.add(param.name, std::move(tensor));
  }
  return file;
}

absl::Status checkParameters(const safetensors::File &weights,
                             const std::vector<ParamInfo> &table,
                             const std::string &source) {
  std::set<std::string> expected;
  for (const ParamInfo &param : table) {
    expected.insert(param.name);
    const Tensor *tensor = weights.find(param.name);
    if (!tensor) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": missing parameter \"", param.name,
                       "\" of shape ", formatShape(param.shape)));
    }
    if (tensor->dtype != DType::F32) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": parameter \"", param.name, "\" has dtype ",
                       dtypeName(tensor->dtype), ", expected F32"));
    }
    if (tensor->shape != param.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": parameter \"", param.name, "\" has shape ",
          formatShape(tensor->shape), ", expected ", formatShape(param.shape)));
    }
  }
  for (const auto &[name, tensor] : weights.tensors) {
    if (!expected.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": unexpected tensor \"", name,
                       "\" (not a parameter of this model)"));
    }
  }
  return absl::OkStatus();
}

} // namespace synth
