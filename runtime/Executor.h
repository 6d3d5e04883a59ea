//===- Executor.h - run an artifact's entry point on the CPU --------------===//
//
// A Session executes one entry point's plan: it allocates the arena once
// (64-byte aligned), owns the input and output storage, binds parameters to
// a weights file, describes every buffer as a halide_buffer_t per the Kernel
// ABI of docs/artifact-format.md, and calls the kernels in order. A Session
// is not thread-safe; sessions of one artifact may run on different threads.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_EXECUTOR_H
#define SYNTHC_RUNTIME_EXECUTOR_H

#include "runtime/Artifact.h"

#include "absl/status/statusor.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace synth::rt {

/// Called after each kernel call with its index in the plan, the call, and
/// its wall time in seconds.
using CallObserver =
    std::function<void(size_t index, const CallInfo &call, double seconds)>;

struct RunOptions {
  /// When set, resized to the number of calls and filled with each call's
  /// wall time in seconds (what `synth-run bench` reports per kernel).
  std::vector<double> *callSeconds = nullptr;
  /// When set, called after every call (timed like callSeconds).
  CallObserver onCall;
  /// Fill the outputs with NaN (F32) or 0xFF bytes (I32, U8) before the run,
  /// so an element no kernel writes shows up instead of passing as a result.
  bool poisonOutputs = true;
  /// Poison the arena too (finds kernels that read a temporary before it is
  /// written; costs a pass over the arena).
  bool poisonArena = false;
};

/// A read-only view of a buffer owned by a session.
struct TensorView {
  DType dtype = DType::F32;
  const std::vector<int64_t> *shape = nullptr;
  const void *data = nullptr;
  size_t bytes = 0;

  /// A Tensor holding a copy of the viewed bytes.
  Tensor copy() const;
};

/// Checks a caller's value for input `name` of `entry`: a known name, the
/// buffer's dtype (Bool accepted for a U8 mask) and shape, the byte count, and
/// mask values 0 or 1. Returns the input's buffer index. Shared by the
/// sessions of every device.
absl::StatusOr<size_t> checkInput(const EntryInfo &entry,
                                  const std::string &name, DType dtype,
                                  const std::vector<int64_t> &shape,
                                  const void *data, size_t bytes);

/// The buffer index of output `name` of `entry`; NotFound lists the outputs.
absl::StatusOr<size_t> outputIndex(const EntryInfo &entry,
                                   const std::string &name);

/// The buffer index of state `name` (an optimizer moment) of `entry`.
absl::StatusOr<size_t> stateIndex(const EntryInfo &entry,
                                  const std::string &name);

/// Checks a caller's value for state `name` of `entry` (dtype, shape, bytes);
/// returns the state's buffer index.
absl::StatusOr<size_t> checkState(const EntryInfo &entry,
                                  const std::string &name, const Tensor &value);

/// The names of `entry`'s state buffers, in buffer order.
std::vector<std::string> stateNames(const EntryInfo &entry);

/// Whether `entry` writes parameters in place (a training step).
bool updatesParameters(const EntryInfo &entry);

class Session {
public:
  /// A session for entry point `entry`, with parameters bound to `weights`
  /// (checked against the parameter table) or, when null, to the artifact's
  /// own. `artifact` must outlive the session.
  static absl::StatusOr<std::unique_ptr<Session>>
  create(const Artifact &artifact, const std::string &entry,
         std::shared_ptr<const safetensors::File> weights = nullptr);

  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  const Artifact &artifact() const { return artifact_; }
  const EntryInfo &entry() const { return entry_; }

  /// Copies `value` into input `name` after checking dtype and shape (a
  /// Bool tensor is accepted for a U8 mask; mask values must be 0 or 1).
  absl::Status setInput(const std::string &name, const Tensor &value);
  absl::Status setInput(const std::string &name, DType dtype,
                        const std::vector<int64_t> &shape, const void *data,
                        size_t bytes);

  /// Rebinds the parameters to `weights` (checked like in create()). An
  /// entry that updates parameters in place (a training step) copies them
  /// and runs on the copy.
  absl::Status setWeights(std::shared_ptr<const safetensors::File> weights);

  /// The parameters as the kernels see them now: after runs of a training
  /// step, the updated values (a snapshot is a copy of *weights()).
  std::shared_ptr<const safetensors::File> weights() const;

  /// State buffers (optimizer moments): zero when the session starts, kept
  /// and updated in place from run to run; read and restored for
  /// checkpoints.
  std::vector<std::string> stateNames() const;
  absl::StatusOr<TensorView> state(const std::string &name) const;
  absl::Status setState(const std::string &name, const Tensor &value);

  /// Runs every call of the plan. Every input must have been set.
  absl::Status run(const RunOptions &options = {});

  /// Output `name` of the last run (a copy, or a view valid until the next
  /// run or the session's end).
  absl::StatusOr<Tensor> output(const std::string &name) const;
  absl::StatusOr<TensorView> outputView(const std::string &name) const;

private:
  struct Impl;
  Session(const Artifact &artifact, const EntryInfo &entry);

  const Artifact &artifact_;
  const EntryInfo &entry_;
  std::unique_ptr<Impl> impl_;
};

} // namespace synth::rt

#endif // SYNTHC_RUNTIME_EXECUTOR_H
