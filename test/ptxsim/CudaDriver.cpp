//===- CudaDriver.cpp - the CUDA driver API over ptxsim -------------------===//
//
// libsynth-ptxsim.so exports the driver entry points libsynthrt's CudaDevice
// resolves (runtime/CudaDevice.cpp), implemented with the PTX interpreter:
// one device, whose compute capability is $SYNTH_PTXSIM_SM (e.g. 80 or 90,
// default 90); cuModuleLoadData accepts PTX text (a cubin is machine code
// for real GPUs: CUDA_ERROR_NO_BINARY_FOR_GPU, after which the runtime falls
// back to the artifact's PTX); cuLaunchKernel runs the grid to completion.
// Point the runtime at it with SYNTH_CUDA_DRIVER=<path to this library>.
//
// Errors of a kernel (an access outside every allocation, a deadlock, an
// instruction ptxsim does not know) fail the launch with
// CUDA_ERROR_LAUNCH_FAILED; cuGetErrorString then returns ptxsim's message.
//
//===----------------------------------------------------------------------===//

#include "test/ptxsim/PtxSim.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using synth::ptxsim::Kernel;
using synth::ptxsim::Memory;
using synth::ptxsim::Module;

enum : int {
  kSuccess = 0,
  kInvalidValue = 1,
  kOutOfMemory = 2,
  kNotInitialized = 3,
  kInvalidDevice = 101,
  kInvalidImage = 200,
  kNoBinaryForGpu = 209,
  kInvalidPtx = 218,
  kInvalidHandle = 400,
  kNotFound = 500,
  kLaunchFailed = 719,
};

struct State {
  std::mutex mutex;
  bool initialized = false;
  Memory memory;
  std::vector<std::unique_ptr<Module>> modules;
  std::string lastError; ///< detail of the last failed load or launch
  int major = 9, minor = 0;
};

State &state() {
  static State *s = new State(); // never destroyed: outlives every caller
  return *s;
}

int fail(State &s, int code, std::string detail) {
  s.lastError = std::move(detail);
  return code;
}

} // namespace

extern "C" {

// The types have the driver API's ABI: CUresult is an int-sized enum,
// CUdevice an int, CUdeviceptr an unsigned long long, handles pointers.
int cuInit(unsigned int flags) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (flags != 0) {
    return kInvalidValue;
  }
  if (const char *sm = std::getenv("SYNTH_PTXSIM_SM")) {
    int value = std::atoi(sm);
    if (value < 10 || value > 129) {
      return fail(s, kInvalidValue, "SYNTH_PTXSIM_SM must be like 80 or 90");
    }
    s.major = value / 10;
    s.minor = value % 10;
  }
  s.initialized = true;
  return kSuccess;
}

int cuDriverGetVersion(int *version) {
  if (!version) {
    return kInvalidValue;
  }
  *version = 13000;
  return kSuccess;
}

int cuDeviceGetCount(int *count) {
  if (!count) {
    return kInvalidValue;
  }
  *count = state().initialized ? 1 : 0;
  return state().initialized ? kSuccess : kNotInitialized;
}

int cuDeviceGet(int *device, int ordinal) {
  if (!device) {
    return kInvalidValue;
  }
  if (ordinal != 0) {
    return kInvalidDevice;
  }
  *device = 0;
  return kSuccess;
}

int cuDeviceGetName(char *name, int length, int device) {
  if (!name || length <= 0) {
    return kInvalidValue;
  }
  if (device != 0) {
    return kInvalidDevice;
  }
  std::string text = "ptxsim (synthc's PTX interpreter, sm_" +
                     std::to_string(state().major * 10 + state().minor) + ")";
  std::strncpy(name, text.c_str(), static_cast<size_t>(length));
  name[length - 1] = '\0';
  return kSuccess;
}

int cuDeviceGetAttribute(int *value, int attribute, int device) {
  if (!value) {
    return kInvalidValue;
  }
  if (device != 0) {
    return kInvalidDevice;
  }
  switch (attribute) {
  case 75:
    *value = state().major;
    return kSuccess; // COMPUTE_CAPABILITY_MAJOR
  case 76:
    *value = state().minor;
    return kSuccess; // COMPUTE_CAPABILITY_MINOR
  default:
    return kInvalidValue;
  }
}

int cuDevicePrimaryCtxRetain(void **context, int device) {
  if (!context) {
    return kInvalidValue;
  }
  if (device != 0) {
    return kInvalidDevice;
  }
  *context = &state();
  return kSuccess;
}

int cuDevicePrimaryCtxRelease_v2(int device) {
  return device == 0 ? kSuccess : kInvalidDevice;
}

int cuCtxSetCurrent(void *) { return kSuccess; }

int cuModuleLoadData(void **module, const void *image) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!module || !image) {
    return kInvalidValue;
  }
  const char *bytes = static_cast<const char *>(image);
  if (std::memcmp(bytes,
                  "\x7f"
                  "ELF",
                  4) == 0) {
    return fail(s, kNoBinaryForGpu, "ptxsim runs PTX only");
  }
  auto parsed = Module::parse(bytes);
  if (!parsed.ok()) {
    return fail(s, kInvalidPtx,
                "ptxsim: " + std::string(parsed.status().message()));
  }
  s.modules.push_back(std::move(*parsed));
  *module = s.modules.back().get();
  return kSuccess;
}

int cuModuleUnload(void *module) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  for (auto it = s.modules.begin(); it != s.modules.end(); ++it) {
    if (it->get() == module) {
      s.modules.erase(it);
      return kSuccess;
    }
  }
  return kInvalidHandle;
}

int cuModuleGetFunction(void **function, void *module, const char *name) {
  if (!function || !module || !name) {
    return kInvalidValue;
  }
  const Kernel *kernel = static_cast<Module *>(module)->kernel(name);
  if (!kernel) {
    return kNotFound;
  }
  *function = const_cast<Kernel *>(kernel);
  return kSuccess;
}

int cuFuncGetAttribute(int *value, int attribute, void *function) {
  if (!value || !function) {
    return kInvalidValue;
  }
  const Kernel &kernel = *static_cast<const Kernel *>(function);
  switch (attribute) {
  case 0:
    *value = synth::ptxsim::maxThreadsPerBlock(kernel);
    return kSuccess;
  case 1:
    *value = static_cast<int>(synth::ptxsim::sharedBytes(kernel));
    return kSuccess;
  default:
    return kInvalidValue;
  }
}

int cuMemAlloc_v2(unsigned long long *pointer, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!pointer || bytes == 0) {
    return kInvalidValue;
  }
  void *memory = s.memory.allocate(bytes);
  if (!memory) {
    return kOutOfMemory;
  }
  *pointer = reinterpret_cast<unsigned long long>(memory);
  return kSuccess;
}

int cuMemFree_v2(unsigned long long pointer) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.memory.free(reinterpret_cast<void *>(pointer)) ? kSuccess
                                                          : kInvalidValue;
}

int cuMemcpyHtoD_v2(unsigned long long destination, const void *source,
                    size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (bytes == 0) {
    return kSuccess;
  }
  if (!source || !s.memory.contains(destination, bytes)) {
    return kInvalidValue;
  }
  std::memcpy(reinterpret_cast<void *>(destination), source, bytes);
  return kSuccess;
}

int cuMemcpyDtoH_v2(void *destination, unsigned long long source,
                    size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (bytes == 0) {
    return kSuccess;
  }
  if (!destination || !s.memory.contains(source, bytes)) {
    return kInvalidValue;
  }
  std::memcpy(destination, reinterpret_cast<const void *>(source), bytes);
  return kSuccess;
}

int cuMemsetD8_v2(unsigned long long destination, unsigned char value,
                  size_t count) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (count == 0) {
    return kSuccess;
  }
  if (!s.memory.contains(destination, count)) {
    return kInvalidValue;
  }
  std::memset(reinterpret_cast<void *>(destination), value, count);
  return kSuccess;
}

int cuStreamCreate(void **stream, unsigned int) {
  if (!stream) {
    return kInvalidValue;
  }
  *stream = &state(); // launches run to completion: one stream is enough
  return kSuccess;
}

int cuStreamDestroy_v2(void *) { return kSuccess; }
int cuStreamSynchronize(void *) { return kSuccess; }

int cuLaunchKernel(void *function, unsigned int gridX, unsigned int gridY,
                   unsigned int gridZ, unsigned int blockX, unsigned int blockY,
                   unsigned int blockZ, unsigned int sharedMemBytes, void *,
                   void **params, void **extra) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!function) {
    return kInvalidHandle;
  }
  if (sharedMemBytes != 0 || extra) {
    return fail(s, kInvalidValue,
                "ptxsim: dynamic shared memory and 'extra' are not supported");
  }
  absl::Status status = synth::ptxsim::launch(
      *static_cast<const Kernel *>(function), {gridX, gridY, gridZ},
      {blockX, blockY, blockZ}, params, s.memory);
  if (!status.ok()) {
    return fail(s, kLaunchFailed, "ptxsim: " + std::string(status.message()));
  }
  return kSuccess;
}

int cuGetErrorName(int error, const char **name) {
  if (!name) {
    return kInvalidValue;
  }
  switch (error) {
  case kSuccess:
    *name = "CUDA_SUCCESS";
    break;
  case kInvalidValue:
    *name = "CUDA_ERROR_INVALID_VALUE";
    break;
  case kOutOfMemory:
    *name = "CUDA_ERROR_OUT_OF_MEMORY";
    break;
  case kNotInitialized:
    *name = "CUDA_ERROR_NOT_INITIALIZED";
    break;
  case kInvalidDevice:
    *name = "CUDA_ERROR_INVALID_DEVICE";
    break;
  case kInvalidImage:
    *name = "CUDA_ERROR_INVALID_IMAGE";
    break;
  case kNoBinaryForGpu:
    *name = "CUDA_ERROR_NO_BINARY_FOR_GPU";
    break;
  case kInvalidPtx:
    *name = "CUDA_ERROR_INVALID_PTX";
    break;
  case kInvalidHandle:
    *name = "CUDA_ERROR_INVALID_HANDLE";
    break;
  case kNotFound:
    *name = "CUDA_ERROR_NOT_FOUND";
    break;
  case kLaunchFailed:
    *name = "CUDA_ERROR_LAUNCH_FAILED";
    break;
  default:
    return kInvalidValue;
  }
  return kSuccess;
}

int cuGetErrorString(int error, const char **text) {
  if (!text) {
    return kInvalidValue;
  }
  State &s = state();
  if ((error == kLaunchFailed || error == kInvalidPtx ||
       error == kNoBinaryForGpu || error == kInvalidValue) &&
      !s.lastError.empty()) {
    *text = s.lastError.c_str();
    return kSuccess;
  }
  const char *name = nullptr;
  if (cuGetErrorName(error, &name) != kSuccess) {
    return kInvalidValue;
  }
  *text = name;
  return kSuccess;
}

} // extern "C"
