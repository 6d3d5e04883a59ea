//===- PtxSim.h - an interpreter of the PTX that synthc generates ---------===//
//
// ptxsim runs PTX kernels on the CPU, one thread block after another, with
// the semantics of the PTX ISA: per-thread registers, per-block shared
// memory, bar.sync, warp-collective shfl.sync and mma.sync (m16n8k16, f16 and
// bf16, with the ISA's fragment layouts). It exists so that the kernels of
// the CUDA back end are checked numerically on machines without a GPU: the
// very PTX that goes into an artifact, after the NVVM lowering and LLVM's
// NVPTX back end, not an IR before them.
//
// It is strict where a GPU is silent: every global access must fall inside a
// live allocation and every shared access inside the block's shared memory;
// shared memory and new allocations start filled with 0xff bytes (NaN as
// f32), so reading what nothing wrote shows; threads that wait at different
// barriers, or a warp whose lanes are not all at the same collective, are a
// deadlock error. It covers the instructions LLVM emits for synthc's kernels
// and rejects others by name. Timing, caches and the memory model beyond
// barriers are out of scope: it says whether a kernel computes the right
// numbers, not how fast.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_TEST_PTXSIM_PTXSIM_H
#define SYNTHC_TEST_PTXSIM_PTXSIM_H

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "absl/strings/string_view.h"
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace synth::ptxsim {

struct Kernel; // PtxSim.cpp

/// "Device" memory: host allocations the simulator checks accesses against.
class Memory {
public:
  ~Memory();
  /// New memory of `bytes` bytes, filled with 0xff.
  void *allocate(size_t bytes);
  /// False when `pointer` is not the start of a live allocation.
  bool free(void *pointer);
  /// Whether [address, address + bytes) lies inside one live allocation.
  bool contains(uint64_t address, size_t bytes) const;

private:
  std::map<uint64_t, size_t> live_; ///< start -> size
};

/// A parsed PTX module: its .entry kernels.
class Module {
public:
  static absl::StatusOr<std::unique_ptr<Module>> parse(absl::string_view ptx);
  ~Module();

  /// The kernel named `name`, or null.
  const Kernel *kernel(absl::string_view name) const;

private:
  Module() = default;
  std::vector<std::unique_ptr<Kernel>> kernels_;
};

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

/// .maxntid (or .reqntid) of the kernel, 1024 when it declares neither.
int maxThreadsPerBlock(const Kernel &kernel);
/// The static shared memory the kernel declares (bytes).
int64_t sharedBytes(const Kernel &kernel);
const std::string &kernelName(const Kernel &kernel);

/// Runs `kernel` on `grid` x `block` threads to completion. `params[i]`
/// points to the value of the kernel's i-th parameter (cuLaunchKernel's
/// kernelParams). Errors name the kernel, block, thread and instruction.
absl::Status launch(const Kernel &kernel, Dim3 grid, Dim3 block, void **params,
                    const Memory &memory);

} // namespace synth::ptxsim

#endif // SYNTHC_TEST_PTXSIM_PTXSIM_H
