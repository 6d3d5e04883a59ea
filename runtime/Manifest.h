//===- Manifest.h - the artifact manifest (docs/artifact-format.md) -------===//
//
// manifest.json as plain structs, its reader (which validates everything a
// hostile or edited manifest can get wrong, naming file, line:column and JSON
// path) and its writer (which the compiler uses to emit manifests).
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_MANIFEST_H
#define SYNTHC_RUNTIME_MANIFEST_H

#include "runtime/Json.h"
#include "runtime/Tensor.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace synth::rt {

/// The value of "format" and the only "version" this runtime reads.
inline constexpr const char *kArtifactFormat = "synthc-artifact";
inline constexpr int64_t kArtifactVersion = 1;
/// The most arguments a kernel call may have (the executor's dispatch table).
inline constexpr int kMaxKernelArguments = 32;
/// Alignment of the arena and of arena offsets, in bytes.
inline constexpr int64_t kArenaAlignment = 64;
/// The only kernel ABI of cuda artifacts: one device pointer per argument.
inline constexpr const char *kCudaAbi = "bare-pointers";
/// Static shared memory a CUDA kernel may use per block, and the most
/// threads per block.
inline constexpr int64_t kCudaMaxSharedBytes = 48 * 1024;
inline constexpr int64_t kCudaMaxThreadsPerBlock = 1024;

struct TargetInfo {
  std::string kind = "cpu"; ///< "cpu" or "cuda"
  std::string arch = "x86-64";
  std::vector<std::string> requiredFeatures;
  std::vector<std::string> variants;
};

struct FileInfo {
  std::string name; ///< a plain file name inside the artifact directory
  std::string sha256;
  int64_t bytes = 0;
};

struct ParameterInfo {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  bool trainable = true;
};

/// Derived buffers hold values computed from the parameters alone (e.g.
/// softmax of a fixed random matrix) by calls marked `once`: they are
/// computed on the first run after parameters are bound, then kept. State
/// buffers (optimizer moments) belong to the session: zero when it starts,
/// kept from run to run, updated in place by the entry's calls.
enum class Storage { Input, Param, Output, Arena, Derived, State };
/// "input", "param", "output", "arena", "derived", "state".
const char *storageName(Storage storage);

struct BufferInfo {
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  Storage storage = Storage::Arena;
  int64_t offset = 0; ///< arena buffers only: byte offset in the arena
  /// param and state buffers only: the parameter's or the state's name.
  std::string param;
  int64_t numel() const;
  int64_t byteSize() const { return numel() * int64_t(dtypeSize(dtype)); }
};

/// An entry input or output: a name bound to a buffer index.
struct Binding {
  std::string name;
  int64_t buffer = 0;
};

struct CallInfo {
  std::string kernel;
  std::vector<int64_t> buffers; ///< kernel arguments: inputs, then outputs
  int64_t flops = 0;
  int64_t bytes = 0;
  /// Reads only param and derived buffers and writes derived ones: run once
  /// per binding of the parameters, not on every run.
  bool once = false;
};

/// One execution plan (entries.<name>).
struct EntryInfo {
  std::string name;
  std::vector<Binding> inputs;
  std::vector<Binding> outputs;
  std::vector<BufferInfo> buffers;
  int64_t arenaBytes = 0;
  std::vector<CallInfo> calls;
  /// Param and state buffers that calls overwrite in place (a training
  /// step's parameters and optimizer moments); empty for inference entries.
  std::vector<int64_t> updates;

  const Binding *findInput(const std::string &name) const;
  const Binding *findOutput(const std::string &name) const;
};

/// The launch configuration of one CUDA kernel (cuda.kernels.<name>).
struct CudaKernelInfo {
  std::string name;  ///< the key: the kernel name calls use
  std::string entry; ///< the function's name in its module
  std::string ptx;   ///< file name of the PTX (listed in files)
  std::string cubin; ///< file name of the cubin, or "" (optional)
  std::array<int64_t, 3> grid = {1, 1, 1};
  std::array<int64_t, 3> block = {1, 1, 1};
  int64_t sharedBytes = 0; ///< static shared memory per block
  std::string anchor;      ///< the kernel's anchor op (informative)
};

/// The manifest's top-level "cuda" key (docs/cuda-backend.md): what only a
/// CUDA runtime needs.
struct CudaInfo {
  std::string arch = "sm_90a";
  std::string abi = kCudaAbi;
  /// Arithmetic of the matmul-shaped kernels: "f32", or "bf16"/"f16" (16-bit
  /// inputs on tensor cores, f32 accumulation).
  std::string precision = "f32";
  std::vector<CudaKernelInfo> kernels;
  std::vector<std::string> skippedEntries;

  const CudaKernelInfo *findKernel(const std::string &name) const;
};

struct Manifest {
  std::string format = kArtifactFormat;
  int64_t version = kArtifactVersion;
  /// The model description, verbatim.
  json::Value model = json::Value::object();
  TargetInfo target;
  std::vector<FileInfo> files;
  std::vector<ParameterInfo> parameters;
  std::vector<EntryInfo> entries;
  /// The "cuda" key. A parsed manifest has it exactly when the target kind
  /// is cuda; validateManifest accepts a cuda manifest without it (the
  /// compiler validates the common part before adding it).
  std::optional<CudaInfo> cuda;
  /// The "schedule" key (cpu targets): the schedule file the kernels were
  /// built with, verbatim (docs/schedules.md), or null when absent.
  json::Value schedule;

  const FileInfo *findFile(const std::string &name) const;
  const ParameterInfo *findParameter(const std::string &name) const;
  const EntryInfo *findEntry(const std::string &name) const;
};

/// Parses and validates manifest text; `source` names the file in errors,
/// which read "<source>:<line>:<column>: <json path>: <what is wrong>".
absl::StatusOr<Manifest> parseManifest(const std::string &text,
                                       const std::string &source);
/// Reads, parses and validates the manifest at `path`.
absl::StatusOr<Manifest> readManifest(const std::string &path);

/// The cross-field checks of parseManifest (buffer indices, references,
/// arena bounds and alignment, ...) on a manifest built in code; errors read
/// "<source>: <json path>: <what is wrong>". The compiler calls this before
/// writing a manifest.
absl::Status validateManifest(const Manifest &manifest,
                              const std::string &source = "<manifest>");

/// The manifest as JSON (indented, keys in the order of the format document).
std::string serializeManifest(const Manifest &manifest);

} // namespace synth::rt

#endif // SYNTHC_RUNTIME_MANIFEST_H
