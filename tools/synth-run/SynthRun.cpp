//===- SynthRun.cpp - what the commands of synth-run share ----------------===//
//
// The definitions behind SynthRun.h: usage and error reporting, numeric
// flags, token picking and decoding with the "decode" entry's cache.
//
//===----------------------------------------------------------------------===//

#include "tools/synth-run/SynthRun.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace synth::run {

//===----------------------------------------------------------------------===//
// Command line
//===----------------------------------------------------------------------===//

/// Reports bad usage of `command` and returns the usage exit status.
int usageError(const std::string &command, const std::string &message) {
  std::fprintf(stderr,
               "synth-run %s: %s\nrun 'synth-run %s --help' for usage\n",
               command.c_str(), message.c_str(), command.c_str());
  return kUsageExit;
}

/// Reports a failure while running and returns the error exit status.
int runError(const std::string &command, const absl::Status &status) {
  std::fprintf(stderr, "synth-run %s: error: %s\n", command.c_str(),
               std::string(status.message()).c_str());
  return kErrorExit;
}

std::optional<std::string> intFlag(const Args &args, const std::string &name,
                                   int64_t min, int64_t max, int64_t fallback,
                                   int64_t &out) {
  std::optional<std::string> text = args.get(name);
  if (!text) {
    out = fallback;
    return std::nullopt;
  }
  if (!absl::SimpleAtoi(*text, &out) || out < min || out > max) {
    return absl::StrCat("--", name, " expects an integer in [", min, ", ", max,
                        "], got \"", *text, "\"");
  }
  return std::nullopt;
}

std::optional<std::string> doubleFlag(const Args &args, const std::string &name,
                                      double min, double fallback,
                                      double &out) {
  std::optional<std::string> text = args.get(name);
  if (!text) {
    out = fallback;
    return std::nullopt;
  }
  if (!absl::SimpleAtod(*text, &out) || !std::isfinite(out) || out < min) {
    return absl::StrCat("--", name, " expects a number >= ", min, ", got \"",
                        *text, "\"");
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

/// Greedy when temperature is 0; else a draw from softmax(logits / T) over
/// the topK most likely entries (all when topK is 0).
int pickToken(const float *logits, int vocab, double temperature, int64_t topK,
              Random &random) {
  std::vector<int> order(static_cast<size_t>(vocab));
  for (int i = 0; i < vocab; ++i) {
    order[i] = i;
  }
  // Ties go to the smaller id, so greedy decoding is deterministic.
  auto better = [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  if (temperature == 0) {
    return *std::min_element(order.begin(), order.end(), better);
  }
  size_t k = topK > 0 ? std::min<size_t>(topK, order.size()) : order.size();
  std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
  std::vector<double> weights(k);
  double max = logits[order[0]], total = 0;
  for (size_t i = 0; i < k; ++i) {
    weights[i] = std::exp((double(logits[order[i]]) - max) / temperature);
    total += weights[i];
  }
  double u = random.uniform() * total;
  for (size_t i = 0; i < k; ++i) {
    if (u < weights[i]) {
      return order[i];
    }
    u -= weights[i];
  }
  return order[k - 1];
}

absl::StatusOr<DecodeCaches> describeDecode(const rt::EntryInfo &entry) {
  const rt::Binding *tokenBinding = entry.findInput("token");
  const rt::Binding *logitsBinding = entry.findOutput("logits");
  const rt::BufferInfo *token =
      tokenBinding ? &entry.buffers[static_cast<size_t>(tokenBinding->buffer)]
                   : nullptr;
  const rt::BufferInfo *logits =
      logitsBinding ? &entry.buffers[static_cast<size_t>(logitsBinding->buffer)]
                    : nullptr;
  if (!token || !logits || token->shape.size() != 2 || token->shape[1] != 1 ||
      logits->shape.size() != 3) {
    return absl::FailedPreconditionError(
        "the \"decode\" entry needs an input token I32 [batch, 1] and an "
        "output logits F32 [batch, 1, vocab]");
  }
  DecodeCaches caches;
  caches.vocab = static_cast<int>(logits->shape[2]);
  for (const rt::Binding &input : entry.inputs) {
    if (input.name.rfind("cache.", 0) == 0) {
      caches.names.push_back(input.name);
      caches.keyCaches +=
          input.name.size() > 2 &&
          input.name.compare(input.name.size() - 2, 2, ".k") == 0;
      caches.positions =
          entry.buffers[static_cast<size_t>(input.buffer)].shape[2];
    }
  }
  if (caches.names.empty() || caches.positions < 1) {
    return absl::FailedPreconditionError(
        "the \"decode\" entry has no cache.* inputs with room for a "
        "position");
  }
  return caches;
}

absl::Status decodeWithCache(Runner &session, const std::vector<int> &prompt,
                             int64_t count, const Sampling &sampling,
                             Random &random,
                             const std::function<void(int)> &onToken) {
  absl::StatusOr<DecodeCaches> caches = describeDecode(session.entry());
  if (!caches.ok()) {
    return caches.status();
  }
  if (prompt.empty()) {
    return absl::InvalidArgumentError("decoding needs a prompt of at least "
                                      "one token");
  }
  const rt::EntryInfo &entry = session.entry();
  const int vocab = caches->vocab;
  const int64_t positions = caches->positions;
  auto resetCaches = [&]() -> absl::Status {
    for (const std::string &name : caches->names) {
      const rt::BufferInfo &buffer =
          entry.buffers[static_cast<size_t>(entry.findInput(name)->buffer)];
      absl::Status s =
          session.setInput(name, Tensor::zeros(buffer.dtype, buffer.shape));
      if (!s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  };
  const rt::BufferInfo &token =
      entry.buffers[static_cast<size_t>(entry.findInput("token")->buffer)];
  Tensor tokenTensor = Tensor::zeros(DType::I32, token.shape);
  Tensor position = Tensor::zeros(DType::I32, {});
  std::vector<int> context = prompt;
  int64_t next = 0; // the position the next token goes to
  std::vector<float> last(static_cast<size_t>(vocab));
  // Runs one token through decode at position `next`.
  auto step = [&](int id) -> absl::Status {
    tokenTensor.data<int32_t>()[0] = id;
    position.data<int32_t>()[0] = static_cast<int32_t>(next);
    absl::Status s = session.setInput("token", tokenTensor);
    if (s.ok()) {
      s = session.setInput("position", position);
    }
    if (s.ok()) {
      s = session.run();
    }
    for (size_t c = 0; s.ok() && c < caches->names.size(); ++c) {
      absl::StatusOr<Tensor> updated = session.output(caches->names[c]);
      s = updated.ok() ? session.setInput(caches->names[c], *updated)
                       : updated.status();
    }
    if (!s.ok()) {
      return s;
    }
    absl::StatusOr<rt::TensorView> view = session.outputView("logits");
    const float *row = static_cast<const float *>(view->data);
    std::copy(row, row + vocab, last.begin());
    ++next;
    return absl::OkStatus();
  };
  // Fills the cache from the last `keep` tokens of the context.
  auto prefill = [&](int64_t keep) -> absl::Status {
    next = 0;
    absl::Status s = resetCaches();
    int64_t from = static_cast<int64_t>(context.size()) - keep;
    for (int64_t i = from; s.ok() && i < static_cast<int64_t>(context.size());
         ++i) {
      s = step(context[i]);
    }
    return s;
  };
  absl::Status status = prefill(
      std::min<int64_t>(static_cast<int64_t>(context.size()), positions));
  for (int64_t i = 0; status.ok() && i < count; ++i) {
    int id = pickToken(last.data(), vocab, sampling.temperature, sampling.topK,
                       random);
    context.push_back(id);
    onToken(id);
    if (next == positions) {
      // The cache is full: start again from the last half of the context.
      status = prefill(positions / 2);
    } else {
      status = step(id);
    }
  }
  return status;
}

} // namespace synth::run
