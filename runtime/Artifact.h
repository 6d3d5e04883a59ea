//===- Artifact.h - a loaded and validated artifact directory -------------===//
//
// Artifact::load reads model.synth/ (docs/artifact-format.md) and checks all
// of it before anything runs: the manifest, every file's size and SHA-256,
// the CPU's features, kernels.so's symbols (every kernel of every call, and
// the Halide runtime's thread and error hooks), and the weights against the
// parameter table. Sessions (Executor.h) then run its entry points.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_ARTIFACT_H
#define SYNTHC_RUNTIME_ARTIFACT_H

#include "runtime/Manifest.h"
#include "runtime/Safetensors.h"

#include "absl/status/statusor.h"

#include <map>
#include <memory>
#include <string>

namespace synth::rt {

/// A kernel's address in kernels.so; the executor casts it to
/// int (*)(halide_buffer_t *, ...) with the call's argument count.
using KernelAddress = void *;

/// What an artifact is loaded for: the CPU executor (Session, Executor.h)
/// or the CUDA device (CudaSession, CudaDevice.h). The artifact's target kind
/// must match.
enum class DeviceKind { Cpu, Cuda };

class Artifact {
public:
  /// Loads and validates the artifact directory `dir` for `device`. Errors
  /// start with `dir` and name the file and field that is wrong. For the CPU:
  /// CPU features, kernels.so and its symbols; for CUDA: no host checks (the
  /// device checks the GPU), and the bytes of every PTX and cubin are kept
  /// (moduleImage).
  static absl::StatusOr<std::unique_ptr<Artifact>>
  load(const std::string &dir, DeviceKind device = DeviceKind::Cpu);

  ~Artifact();
  Artifact(const Artifact &) = delete;
  Artifact &operator=(const Artifact &) = delete;

  const std::string &dir() const { return dir_; }
  const Manifest &manifest() const { return manifest_; }
  /// The entry point `name`, or nullptr.
  const EntryInfo *entry(const std::string &name) const {
    return manifest_.findEntry(name);
  }

  /// The initial weights of weights.safetensors (shared with sessions).
  const std::shared_ptr<const safetensors::File> &weights() const {
    return weights_;
  }
  /// OK when `weights` holds exactly the parameter table (names, shapes,
  /// F32); `source` names the file in errors.
  absl::Status checkWeights(const safetensors::File &weights,
                            const std::string &source) const;

  /// The resolved address of `kernel` (every kernel a call names is resolved
  /// at load time), or nullptr.
  KernelAddress kernel(const std::string &name) const;

  /// What the artifact was loaded for.
  DeviceKind device() const { return device_; }

  /// The checked bytes of a PTX or cubin file of a cuda artifact (named in
  /// cuda.kernels), or nullptr.
  const std::string *moduleImage(const std::string &file) const;

  /// Sets the size of kernels.so's Halide thread pool (0: one per CPU) for
  /// every session of this artifact; returns the previous setting.
  absl::StatusOr<int> setNumThreads(int threads);

  /// The message of the last Halide error raised by this artifact's kernels
  /// on this thread (or, failing that, on any thread), and forgets it.
  std::string takeKernelError() const;

private:
  Artifact() = default;
  /// The last step of load: parses and checks the weights.
  static absl::StatusOr<std::unique_ptr<Artifact>>
  finishLoading(std::unique_ptr<Artifact> artifact,
                const std::string &weightsBytes);

  std::string dir_;
  DeviceKind device_ = DeviceKind::Cpu;
  Manifest manifest_;
  std::map<std::string, std::string> moduleImages_;
  std::shared_ptr<const safetensors::File> weights_;
  void *library_ = nullptr;
  std::map<std::string, KernelAddress> kernels_;
  int (*setNumThreads_)(int) = nullptr;
  void (*shutdownThreadPool_)() = nullptr;
};

} // namespace synth::rt

#endif // SYNTHC_RUNTIME_ARTIFACT_H
