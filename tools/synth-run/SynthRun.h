//===- SynthRun.h - what the commands of synth-run share ------------------===//
//
// The command line (flag tables, parsed arguments, exit statuses and their
// messages), one session API over the CPU and CUDA executors, and token
// picking and cached decoding, used by synth-run.cpp's commands and by the
// train command (Train.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_TOOLS_SYNTH_RUN_SYNTHRUN_H
#define SYNTHC_TOOLS_SYNTH_RUN_SYNTHRUN_H

#include "runtime/CudaDevice.h"
#include "runtime/Executor.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace synth::run {

//===----------------------------------------------------------------------===//
// Command line
//===----------------------------------------------------------------------===//

inline constexpr int kUsageExit = 2;
inline constexpr int kErrorExit = 1;

struct FlagSpec {
  const char *name;  ///< without the leading "--"
  const char *value; ///< the value's placeholder, or nullptr for a switch
  const char *help;
  bool repeatable = false;
};

/// A command's parsed arguments: the artifact and the flags given.
struct Args {
  std::string command;
  std::string artifact;
  std::map<std::string, std::vector<std::string>> flags;
  bool help = false;

  bool has(const std::string &name) const { return flags.count(name) != 0; }
  std::optional<std::string> get(const std::string &name) const {
    auto it = flags.find(name);
    if (it == flags.end()) {
      return std::nullopt;
    }
    return it->second.front();
  }
  std::vector<std::string> getAll(const std::string &name) const {
    auto it = flags.find(name);
    return it == flags.end() ? std::vector<std::string>{} : it->second;
  }
};

/// Reports bad usage of `command` and returns the usage exit status.
int usageError(const std::string &command, const std::string &message);

/// Reports a failure while running and returns the error exit status.
int runError(const std::string &command, const absl::Status &status);

/// An integer flag within [min, max], or `fallback` when absent; returns
/// the usage message when the value is bad.
std::optional<std::string> intFlag(const Args &args, const std::string &name,
                                   int64_t min, int64_t max, int64_t fallback,
                                   int64_t &out);

/// A finite number >= min, or `fallback` when absent.
std::optional<std::string> doubleFlag(const Args &args, const std::string &name,
                                      double min, double fallback, double &out);

//===----------------------------------------------------------------------===//
// Sessions
//===----------------------------------------------------------------------===//

/// A session of the CPU executor or of the CUDA device, behind one API.
class Runner {
public:
  explicit Runner(std::unique_ptr<rt::Session> cpu) : cpu_(std::move(cpu)) {}
  explicit Runner(std::unique_ptr<rt::CudaSession> cuda)
      : cuda_(std::move(cuda)) {}

  const rt::EntryInfo &entry() const {
    return cpu_ ? cpu_->entry() : cuda_->entry();
  }
  absl::Status setInput(const std::string &name, const Tensor &value) {
    return cpu_ ? cpu_->setInput(name, value) : cuda_->setInput(name, value);
  }
  absl::Status run(const rt::RunOptions &options = {}) {
    return cpu_ ? cpu_->run(options) : cuda_->run(options);
  }
  absl::StatusOr<Tensor> output(const std::string &name) const {
    return cpu_ ? cpu_->output(name) : cuda_->output(name);
  }
  absl::StatusOr<rt::TensorView> outputView(const std::string &name) const {
    return cpu_ ? cpu_->outputView(name) : cuda_->outputView(name);
  }
  absl::Status setWeights(std::shared_ptr<const safetensors::File> weights) {
    return cpu_ ? cpu_->setWeights(std::move(weights))
                : cuda_->setWeights(std::move(weights));
  }
  /// The current parameters (a CUDA session copies them back from the
  /// device; that copy can fail).
  absl::StatusOr<std::shared_ptr<const safetensors::File>> weights() const {
    if (cpu_) {
      return cpu_->weights();
    }
    return cuda_->weights();
  }
  std::vector<std::string> stateNames() const {
    return cpu_ ? cpu_->stateNames() : cuda_->stateNames();
  }
  absl::StatusOr<rt::TensorView> state(const std::string &name) const {
    return cpu_ ? cpu_->state(name) : cuda_->state(name);
  }
  absl::Status setState(const std::string &name, const Tensor &value) {
    return cpu_ ? cpu_->setState(name, value) : cuda_->setState(name, value);
  }

  /// A session of `entry` on `device` (null: the CPU), with `weights` (null:
  /// the artifact's).
  static absl::StatusOr<std::unique_ptr<Runner>>
  create(const rt::Artifact &artifact, const rt::CudaDevice *device,
         const std::string &entry,
         std::shared_ptr<const safetensors::File> weights = nullptr) {
    if (device) {
      absl::StatusOr<std::unique_ptr<rt::CudaSession>> session =
          rt::CudaSession::create(*device, artifact, entry, std::move(weights));
      if (!session.ok()) {
        return session.status();
      }
      return std::make_unique<Runner>(std::move(*session));
    }
    absl::StatusOr<std::unique_ptr<rt::Session>> session =
        rt::Session::create(artifact, entry, std::move(weights));
    if (!session.ok()) {
      return session.status();
    }
    return std::make_unique<Runner>(std::move(*session));
  }

private:
  std::unique_ptr<rt::Session> cpu_;
  std::unique_ptr<rt::CudaSession> cuda_;
};

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

/// SplitMix64: a seeded generator whose stream is the same everywhere (the
/// standard library's distributions are not). Its whole state is one word,
/// which checkpoints save and restore.
class Random {
public:
  explicit Random(uint64_t state) : state_(state) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1).
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  uint64_t state() const { return state_; }

private:
  uint64_t state_;
};

/// Greedy when temperature is 0; else a draw from softmax(logits / T) over
/// the topK most likely entries (all when topK is 0).
int pickToken(const float *logits, int vocab, double temperature, int64_t topK,
              Random &random);

/// The "decode" entry's shape: its caches (inputs named cache.*), how many of
/// them hold keys, the positions they have room for, and the vocabulary.
struct DecodeCaches {
  std::vector<std::string> names;
  int keyCaches = 0;
  int64_t positions = 0;
  int vocab = 0;
};

/// Checks that `entry` is a decode entry (input token I32 [batch, 1], output
/// logits F32 [batch, 1, vocab], caches of at least one position) and
/// describes its caches.
absl::StatusOr<DecodeCaches> describeDecode(const rt::EntryInfo &entry);

struct Sampling {
  double temperature = 0; ///< 0: greedy
  int64_t topK = 0;       ///< 0: all
};

/// Continues `prompt` (at least one id) by `count` tokens with a decode
/// session: one call per token, the caches carried from output to input;
/// when they are full, decoding restarts from the last half of the context.
/// Calls `onToken` with every new token as soon as it is picked.
absl::Status decodeWithCache(Runner &session, const std::vector<int> &prompt,
                             int64_t count, const Sampling &sampling,
                             Random &random,
                             const std::function<void(int)> &onToken);

} // namespace synth::run

#endif // SYNTHC_TOOLS_SYNTH_RUN_SYNTHRUN_H
