//===- CudaDevice.h - run a cuda artifact's entry point on an NVIDIA GPU --===//
//
// CudaDevice loads the CUDA driver at run time (dlopen of libcuda.so.1;
// libsynthrt never links libcuda or cudart), initializes it and retains the
// primary context of one GPU. CudaSession is the CUDA counterpart of Session
// (Executor.h): it loads the module (cubin, else PTX) of every kernel its
// entry calls, allocates device memory for every buffer of the plan (one
// arena, parameters uploaded once per weights binding, derived values,
// inputs, outputs), launches the calls in order on a stream with the
// manifest's grid and block and one device pointer per argument (the
// "bare-pointers" ABI of docs/cuda-backend.md), and copies the outputs back.
// Without a driver or a GPU, open() returns an error; nothing aborts.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_CUDADEVICE_H
#define SYNTHC_RUNTIME_CUDADEVICE_H

#include "runtime/Artifact.h"
#include "runtime/Executor.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <memory>
#include <string>
#include <vector>

namespace synth::rt {

/// The driver library open() loads by default.
inline constexpr const char *kCudaDriverLibrary = "libcuda.so.1";

/// The driver library to load: $SYNTH_CUDA_DRIVER when set and not empty (a
/// path or a name dlopen searches: another libcuda, or the test suite's
/// PTX interpreter, test/ptxsim), else kCudaDriverLibrary.
std::string defaultCudaDriverLibrary();

/// The function table of a loaded driver (CudaDevice.cpp).
struct CudaDriver;

/// OK when a device of compute capability major.minor runs code for `arch`
/// (sm_XY: major X, minor >= Y; sm_XYa: exactly X.Y). `device` names the
/// device in the error.
absl::Status checkCudaArch(const std::string &arch, int major, int minor,
                           const std::string &device);

class CudaDevice {
public:
  /// Loads the driver `driverLibrary` (a name dlopen searches, or a path;
  /// empty: defaultCudaDriverLibrary()), initializes it and retains the
  /// primary context of GPU `ordinal`.
  static absl::StatusOr<std::unique_ptr<CudaDevice>>
  open(int ordinal = 0, const std::string &driverLibrary = "");

  ~CudaDevice();
  CudaDevice(const CudaDevice &) = delete;
  CudaDevice &operator=(const CudaDevice &) = delete;

  int ordinal() const { return ordinal_; }
  /// The device's name, e.g. "NVIDIA H200".
  const std::string &name() const { return name_; }
  int computeMajor() const { return major_; }
  int computeMinor() const { return minor_; }
  /// "device 0 (NVIDIA H200, compute capability 9.0)".
  std::string describe() const;

  /// OK when the device runs `artifact`'s code (checkCudaArch on cuda.arch).
  absl::Status checkArtifact(const Artifact &artifact) const;

  /// Makes the device's context current on the calling thread.
  absl::Status makeCurrent() const;

  const CudaDriver &driver() const { return *driver_; }
  void *context() const { return context_; }

private:
  CudaDevice() = default;

  const CudaDriver *driver_ = nullptr;
  int ordinal_ = 0;
  int device_ = 0;
  void *context_ = nullptr;
  std::string name_;
  int major_ = 0;
  int minor_ = 0;
};

/// One entry point of a cuda artifact on a CudaDevice; the API of Session.
/// Not thread-safe. The device and the artifact (loaded with
/// DeviceKind::Cuda) must outlive the session.
class CudaSession {
public:
  static absl::StatusOr<std::unique_ptr<CudaSession>>
  create(const CudaDevice &device, const Artifact &artifact,
         const std::string &entry,
         std::shared_ptr<const safetensors::File> weights = nullptr);

  ~CudaSession();
  CudaSession(const CudaSession &) = delete;
  CudaSession &operator=(const CudaSession &) = delete;

  const Artifact &artifact() const { return artifact_; }
  const EntryInfo &entry() const { return entry_; }

  absl::Status setInput(const std::string &name, const Tensor &value);
  absl::Status setInput(const std::string &name, DType dtype,
                        const std::vector<int64_t> &shape, const void *data,
                        size_t bytes);
  /// Uploads the parameters of `weights` (checked against the parameter
  /// table); once calls rerun on the next run. The device holds its own
  /// copy: a training step updates that, never `weights`.
  absl::Status setWeights(std::shared_ptr<const safetensors::File> weights);

  /// The parameters as the kernels see them now (after training steps, the
  /// updated values, copied back from the device when they changed; an
  /// error when that copy fails, never stale values).
  absl::StatusOr<std::shared_ptr<const safetensors::File>> weights() const;

  /// State buffers (optimizer moments), as Session: zero when the session
  /// starts, kept on the device and updated in place from run to run.
  std::vector<std::string> stateNames() const;
  /// A copy of state `name` from the device (valid until the next call).
  absl::StatusOr<TensorView> state(const std::string &name) const;
  absl::Status setState(const std::string &name, const Tensor &value);

  /// Launches every call of the plan and copies the outputs back. With
  /// timing (RunOptions::callSeconds or onCall) the stream is synchronized
  /// after each call, and each call's time includes its launch.
  absl::Status run(const RunOptions &options = {});

  absl::StatusOr<Tensor> output(const std::string &name) const;
  absl::StatusOr<TensorView> outputView(const std::string &name) const;

private:
  struct Impl;
  CudaSession(const CudaDevice &device, const Artifact &artifact,
              const EntryInfo &entry);

  const CudaDevice &device_;
  const Artifact &artifact_;
  const EntryInfo &entry_;
  std::unique_ptr<Impl> impl_;
};

} // namespace synth::rt

#endif // SYNTHC_RUNTIME_CUDADEVICE_H
