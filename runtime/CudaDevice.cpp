//===- CudaDevice.cpp - the CUDA driver through dlopen, and sessions ------===//
//
// The driver API is reached only through function pointers found with dlsym
// in libcuda.so.1, by their versioned symbol names (cuMemAlloc_v2, ...: what
// cuda.h's macros map the plain names to). With the toolkit's cuda.h
// (SYNTH_HAVE_CUDA_H, set by CMake when it finds one) the types are the
// header's and every pointer type is checked against its prototype at
// compile time; without it, the few types used are declared here with the
// same layout. The driver library is loaded once per process and never
// closed.
//
//===----------------------------------------------------------------------===//

#include "runtime/CudaDevice.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <mutex>
#include <type_traits>

#ifdef SYNTH_HAVE_CUDA_H
#include <cuda.h>
#else
extern "C" {
typedef enum cudaError_enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
  CUDA_ERROR_FILE_NOT_FOUND = 301
} CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef enum CUdevice_attribute_enum {
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
} CUdevice_attribute;
typedef enum CUfunction_attribute_enum {
  CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
  CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1
} CUfunction_attribute;
}
#endif

namespace synth::rt {

//===----------------------------------------------------------------------===//
// The driver
//===----------------------------------------------------------------------===//

struct CudaDriver {
  std::string library;
  CUresult (*init)(unsigned int) = nullptr;
  CUresult (*driverGetVersion)(int *) = nullptr;
  CUresult (*deviceGetCount)(int *) = nullptr;
  CUresult (*deviceGet)(CUdevice *, int) = nullptr;
  CUresult (*deviceGetName)(char *, int, CUdevice) = nullptr;
  CUresult (*deviceGetAttribute)(int *, CUdevice_attribute, CUdevice) = nullptr;
  CUresult (*primaryCtxRetain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*primaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*ctxSetCurrent)(CUcontext) = nullptr;
  CUresult (*moduleLoadData)(CUmodule *, const void *) = nullptr;
  CUresult (*moduleUnload)(CUmodule) = nullptr;
  CUresult (*moduleGetFunction)(CUfunction *, CUmodule, const char *) = nullptr;
  CUresult (*funcGetAttribute)(int *, CUfunction_attribute,
                               CUfunction) = nullptr;
  CUresult (*memAlloc)(CUdeviceptr *, size_t) = nullptr;
  CUresult (*memFree)(CUdeviceptr) = nullptr;
  CUresult (*memcpyHtoD)(CUdeviceptr, const void *, size_t) = nullptr;
  CUresult (*memcpyDtoH)(void *, CUdeviceptr, size_t) = nullptr;
  CUresult (*memsetD8)(CUdeviceptr, unsigned char, size_t) = nullptr;
  CUresult (*streamCreate)(CUstream *, unsigned int) = nullptr;
  CUresult (*streamDestroy)(CUstream) = nullptr;
  CUresult (*streamSynchronize)(CUstream) = nullptr;
  CUresult (*launchKernel)(CUfunction, unsigned int, unsigned int, unsigned int,
                           unsigned int, unsigned int, unsigned int,
                           unsigned int, CUstream, void **, void **) = nullptr;
  CUresult (*getErrorName)(CUresult, const char **) = nullptr;
  CUresult (*getErrorString)(CUresult, const char **) = nullptr;

  /// "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)".
  std::string errorText(CUresult result) const {
    const char *name = nullptr;
    const char *text = nullptr;
    if (getErrorName && getErrorName(result, &name) != CUDA_SUCCESS) {
      name = nullptr;
    }
    if (getErrorString && getErrorString(result, &text) != CUDA_SUCCESS) {
      text = nullptr;
    }
    std::string out =
        name ? std::string(name) : absl::StrCat("CUDA error ", int(result));
    if (text) {
      absl::StrAppend(&out, " (", text, ")");
    }
    return out;
  }

  /// OK, or "<what>: <error text>".
  absl::Status check(CUresult result, const std::string &what) const {
    if (result == CUDA_SUCCESS) {
      return absl::OkStatus();
    }
    return absl::InternalError(absl::StrCat(what, ": ", errorText(result)));
  }
};

namespace {

#ifdef SYNTH_HAVE_CUDA_H
// The table's types are the prototypes' (cuda.h maps cuMemAlloc to
// cuMemAlloc_v2 and so on, as dlsym below does by name).
#define SYNTH_CHECK_PROTOTYPE(member, function)                                \
  static_assert(                                                               \
      std::is_same_v<decltype(CudaDriver::member), decltype(&function)>,       \
      #function " does not match cuda.h")
SYNTH_CHECK_PROTOTYPE(init, cuInit);
SYNTH_CHECK_PROTOTYPE(driverGetVersion, cuDriverGetVersion);
SYNTH_CHECK_PROTOTYPE(deviceGetCount, cuDeviceGetCount);
SYNTH_CHECK_PROTOTYPE(deviceGet, cuDeviceGet);
SYNTH_CHECK_PROTOTYPE(deviceGetName, cuDeviceGetName);
SYNTH_CHECK_PROTOTYPE(deviceGetAttribute, cuDeviceGetAttribute);
SYNTH_CHECK_PROTOTYPE(primaryCtxRetain, cuDevicePrimaryCtxRetain);
SYNTH_CHECK_PROTOTYPE(primaryCtxRelease, cuDevicePrimaryCtxRelease);
SYNTH_CHECK_PROTOTYPE(ctxSetCurrent, cuCtxSetCurrent);
SYNTH_CHECK_PROTOTYPE(moduleLoadData, cuModuleLoadData);
SYNTH_CHECK_PROTOTYPE(moduleUnload, cuModuleUnload);
SYNTH_CHECK_PROTOTYPE(moduleGetFunction, cuModuleGetFunction);
SYNTH_CHECK_PROTOTYPE(funcGetAttribute, cuFuncGetAttribute);
SYNTH_CHECK_PROTOTYPE(memAlloc, cuMemAlloc);
SYNTH_CHECK_PROTOTYPE(memFree, cuMemFree);
SYNTH_CHECK_PROTOTYPE(memcpyHtoD, cuMemcpyHtoD);
SYNTH_CHECK_PROTOTYPE(memcpyDtoH, cuMemcpyDtoH);
SYNTH_CHECK_PROTOTYPE(memsetD8, cuMemsetD8);
SYNTH_CHECK_PROTOTYPE(streamCreate, cuStreamCreate);
SYNTH_CHECK_PROTOTYPE(streamDestroy, cuStreamDestroy);
SYNTH_CHECK_PROTOTYPE(streamSynchronize, cuStreamSynchronize);
SYNTH_CHECK_PROTOTYPE(launchKernel, cuLaunchKernel);
SYNTH_CHECK_PROTOTYPE(getErrorName, cuGetErrorName);
SYNTH_CHECK_PROTOTYPE(getErrorString, cuGetErrorString);
#undef SYNTH_CHECK_PROTOTYPE
#endif

/// Loads `library` and resolves the table, once per library name per
/// process (the driver is never unloaded).
absl::StatusOr<const CudaDriver *> loadDriver(const std::string &library) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<CudaDriver>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = loaded.find(library);
  if (found != loaded.end()) {
    return found->second.get();
  }
  dlerror();
  void *handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    std::string detail = why ? why : "unknown dlopen error";
    if (detail.find("No such file") != std::string::npos ||
        detail.find("cannot open shared object") != std::string::npos) {
      return absl::FailedPreconditionError(
          absl::StrCat("no CUDA driver: ", library,
                       " not found (this machine has no NVIDIA GPU driver)"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("no CUDA driver: cannot load ", library, ": ", detail));
  }
  auto driver = std::make_unique<CudaDriver>();
  driver->library = library;
  std::vector<std::string> missing;
  auto resolve = [&](auto &member, const char *name) {
    void *address = ::dlsym(handle, name);
    if (!address) {
      missing.push_back(name);
    }
    member =
        reinterpret_cast<std::remove_reference_t<decltype(member)>>(address);
  };
  resolve(driver->init, "cuInit");
  resolve(driver->driverGetVersion, "cuDriverGetVersion");
  resolve(driver->deviceGetCount, "cuDeviceGetCount");
  resolve(driver->deviceGet, "cuDeviceGet");
  resolve(driver->deviceGetName, "cuDeviceGetName");
  resolve(driver->deviceGetAttribute, "cuDeviceGetAttribute");
  resolve(driver->primaryCtxRetain, "cuDevicePrimaryCtxRetain");
  resolve(driver->primaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  resolve(driver->ctxSetCurrent, "cuCtxSetCurrent");
  resolve(driver->moduleLoadData, "cuModuleLoadData");
  resolve(driver->moduleUnload, "cuModuleUnload");
  resolve(driver->moduleGetFunction, "cuModuleGetFunction");
  resolve(driver->funcGetAttribute, "cuFuncGetAttribute");
  resolve(driver->memAlloc, "cuMemAlloc_v2");
  resolve(driver->memFree, "cuMemFree_v2");
  resolve(driver->memcpyHtoD, "cuMemcpyHtoD_v2");
  resolve(driver->memcpyDtoH, "cuMemcpyDtoH_v2");
  resolve(driver->memsetD8, "cuMemsetD8_v2");
  resolve(driver->streamCreate, "cuStreamCreate");
  resolve(driver->streamDestroy, "cuStreamDestroy_v2");
  resolve(driver->streamSynchronize, "cuStreamSynchronize");
  resolve(driver->launchKernel, "cuLaunchKernel");
  resolve(driver->getErrorName, "cuGetErrorName");
  resolve(driver->getErrorString, "cuGetErrorString");
  if (!missing.empty()) {
    ::dlclose(handle);
    return absl::FailedPreconditionError(
        absl::StrCat("no CUDA driver: ", library, " does not export ",
                     absl::StrJoin(missing, ", ")));
  }
  const CudaDriver *result = driver.get();
  loaded[library] = std::move(driver);
  return result;
}

/// sm_XY[a] -> {X, Y}; false when `arch` is not of that form.
bool parseArch(const std::string &arch, int &major, int &minor,
               bool &specific) {
  if (arch.size() < 5 || arch.compare(0, 3, "sm_") != 0) {
    return false;
  }
  specific = arch.back() == 'a';
  std::string digits = arch.substr(3, arch.size() - 3 - (specific ? 1 : 0));
  if (digits.size() < 2 || digits.size() > 4) {
    return false;
  }
  int number = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') {
      return false;
    }
    number = number * 10 + (c - '0');
  }
  major = number / 10;
  minor = number % 10;
  return true;
}

} // namespace

absl::Status checkCudaArch(const std::string &arch, int major, int minor,
                           const std::string &device) {
  int wantMajor = 0, wantMinor = 0;
  bool specific = false;
  if (!parseArch(arch, wantMajor, wantMinor, specific)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown CUDA architecture \"", arch, "\""));
  }
  bool runs = major == wantMajor &&
              (specific ? minor == wantMinor : minor >= wantMinor);
  if (!runs) {
    return absl::FailedPreconditionError(
        absl::StrCat("the artifact is for ", arch, " (compute capability ",
                     wantMajor, ".", wantMinor, specific ? " exactly" : "",
                     "), but ", device, " has compute capability ", major, ".",
                     minor, "; recompile with --gpu-arch=sm_", major, minor,
                     major >= 9 ? "a" : ""));
  }
  return absl::OkStatus();
}

//===----------------------------------------------------------------------===//
// CudaDevice
//===----------------------------------------------------------------------===//

std::string defaultCudaDriverLibrary() {
  const char *library = std::getenv("SYNTH_CUDA_DRIVER");
  return library && *library ? std::string(library) : kCudaDriverLibrary;
}

absl::StatusOr<std::unique_ptr<CudaDevice>>
CudaDevice::open(int ordinal, const std::string &requestedLibrary) {
  const std::string driverLibrary =
      requestedLibrary.empty() ? defaultCudaDriverLibrary() : requestedLibrary;
  absl::StatusOr<const CudaDriver *> loaded = loadDriver(driverLibrary);
  if (!loaded.ok()) {
    return loaded.status();
  }
  const CudaDriver &driver = **loaded;
  CUresult result = driver.init(0);
  if (result != CUDA_SUCCESS) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no usable CUDA device: cuInit failed: ", driver.errorText(result),
        " (driver ", driverLibrary, ")"));
  }
  int count = 0;
  absl::Status status =
      driver.check(driver.deviceGetCount(&count), "cuDeviceGetCount");
  if (!status.ok()) {
    return status;
  }
  if (count == 0) {
    return absl::FailedPreconditionError(
        "no CUDA device: the driver reports 0 devices");
  }
  if (ordinal < 0 || ordinal >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("no CUDA device ", ordinal, " (the driver reports ", count,
                     count == 1 ? " device)" : " devices)"));
  }
  std::unique_ptr<CudaDevice> device(new CudaDevice());
  device->driver_ = &driver;
  device->ordinal_ = ordinal;
  CUdevice handle = 0;
  status = driver.check(driver.deviceGet(&handle, ordinal), "cuDeviceGet");
  if (!status.ok()) {
    return status;
  }
  device->device_ = handle;
  char name[256] = {};
  status = driver.check(driver.deviceGetName(name, sizeof(name) - 1, handle),
                        "cuDeviceGetName");
  if (!status.ok()) {
    return status;
  }
  device->name_ = name;
  status =
      driver.check(driver.deviceGetAttribute(
                       &device->major_,
                       CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, handle),
                   "cuDeviceGetAttribute(compute capability major)");
  if (status.ok()) {
    status =
        driver.check(driver.deviceGetAttribute(
                         &device->minor_,
                         CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, handle),
                     "cuDeviceGetAttribute(compute capability minor)");
  }
  if (!status.ok()) {
    return status;
  }
  CUcontext context = nullptr;
  status = driver.check(
      driver.primaryCtxRetain(&context, handle),
      absl::StrCat("cuDevicePrimaryCtxRetain(device ", ordinal, ")"));
  if (!status.ok()) {
    return status;
  }
  device->context_ = context;
  status = device->makeCurrent();
  if (!status.ok()) {
    return status;
  }
  return device;
}

CudaDevice::~CudaDevice() {
  if (context_) {
    driver_->primaryCtxRelease(device_);
  }
}

std::string CudaDevice::describe() const {
  return absl::StrCat("device ", ordinal_, " (", name_, ", compute capability ",
                      major_, ".", minor_, ")");
}

absl::Status CudaDevice::checkArtifact(const Artifact &artifact) const {
  const Manifest &m = artifact.manifest();
  if (m.target.kind != "cuda" || !m.cuda) {
    return absl::FailedPreconditionError(absl::StrCat(
        artifact.dir(), ": the artifact's target is ", m.target.kind, " (",
        m.target.arch, "); it cannot run on the CUDA device"));
  }
  absl::Status status = checkCudaArch(m.cuda->arch, major_, minor_, describe());
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(artifact.dir(), ": ", status.message()));
  }
  return absl::OkStatus();
}

absl::Status CudaDevice::makeCurrent() const {
  return driver_->check(
      driver_->ctxSetCurrent(static_cast<CUcontext>(context_)),
      "cuCtxSetCurrent");
}

//===----------------------------------------------------------------------===//
// CudaSession
//===----------------------------------------------------------------------===//

struct CudaSession::Impl {
  const CudaDriver *driver = nullptr;
  CUstream stream = nullptr;
  /// Every allocation, freed at the end.
  std::vector<CUdeviceptr> allocations;
  CUdeviceptr arena = 0;
  /// Per plan buffer: its device address (param buffers: set by setWeights).
  std::vector<CUdeviceptr> addresses;
  /// Per parameter name: its device copy (one per name, shared by buffers).
  std::map<std::string, CUdeviceptr> params;
  std::vector<bool> inputSet;
  /// Per output buffer: the host copy of the last run.
  std::map<size_t, std::vector<uint8_t>> outputs;
  /// Per module file: the loaded module.
  std::map<std::string, CUmodule> modules;
  /// Per call: function, launch configuration, argument values and pointers.
  struct Launch {
    CUfunction function = nullptr;
    const CudaKernelInfo *kernel = nullptr;
    std::vector<CUdeviceptr> values;
    std::vector<void *> params;
  };
  std::vector<Launch> launches;
  std::shared_ptr<const safetensors::File> weights;
  /// Whether runs write parameters in place (a training step); then
  /// `hostWeights` caches the device's parameters once read back, and
  /// `paramsChanged` says a run (even a failed one) may have changed them
  /// since.
  bool updatesParams = false;
  mutable bool paramsChanged = false;
  mutable std::shared_ptr<safetensors::File> hostWeights;
  /// Host copies of state buffers, refreshed by state().
  mutable std::map<size_t, std::vector<uint8_t>> hostStates;
  bool hasRun = false;
  bool derivedValid = false;

  absl::Status allocate(size_t bytes, const std::string &what,
                        CUdeviceptr &out) {
    out = 0;
    CUresult result = driver->memAlloc(&out, bytes);
    if (result != CUDA_SUCCESS) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot allocate ", bytes, " bytes of device memory for ", what, ": ",
          driver->errorText(result)));
    }
    allocations.push_back(out);
    return absl::OkStatus();
  }
};

CudaSession::CudaSession(const CudaDevice &device, const Artifact &artifact,
                         const EntryInfo &entry)
    : device_(device), artifact_(artifact), entry_(entry),
      impl_(std::make_unique<Impl>()) {}

CudaSession::~CudaSession() {
  Impl &impl = *impl_;
  if (!impl.driver) {
    return;
  }
  if (!device_.makeCurrent().ok()) {
    return; // the context is gone; nothing can be freed through it
  }
  if (impl.stream) {
    impl.driver->streamSynchronize(impl.stream);
    impl.driver->streamDestroy(impl.stream);
  }
  for (CUdeviceptr pointer : impl.allocations) {
    impl.driver->memFree(pointer);
  }
  for (const auto &[file, module] : impl.modules) {
    impl.driver->moduleUnload(module);
  }
}

absl::StatusOr<std::unique_ptr<CudaSession>>
CudaSession::create(const CudaDevice &device, const Artifact &artifact,
                    const std::string &entryName,
                    std::shared_ptr<const safetensors::File> weights) {
  if (artifact.device() != DeviceKind::Cuda) {
    return absl::FailedPreconditionError(absl::StrCat(
        artifact.dir(), ": the artifact was not loaded for the CUDA device"));
  }
  absl::Status status = device.checkArtifact(artifact);
  if (!status.ok()) {
    return status;
  }
  const EntryInfo *entry = artifact.entry(entryName);
  if (!entry) {
    std::vector<std::string> names;
    for (const EntryInfo &e : artifact.manifest().entries) {
      names.push_back(e.name);
    }
    std::string skipped;
    for (const std::string &name : artifact.manifest().cuda->skippedEntries) {
      if (name == entryName) {
        skipped = " (the CUDA back end skipped it)";
      }
    }
    return absl::NotFoundError(absl::StrCat(
        artifact.dir(), ": no entry point \"", entryName, "\"", skipped,
        " (the artifact has: ", absl::StrJoin(names, ", "), ")"));
  }
  status = device.makeCurrent();
  if (!status.ok()) {
    return status;
  }
  std::unique_ptr<CudaSession> session(
      new CudaSession(device, artifact, *entry));
  Impl &impl = *session->impl_;
  const CudaDriver &driver = device.driver();
  impl.driver = &driver;
  const CudaInfo &cuda = *artifact.manifest().cuda;

  status = driver.check(driver.streamCreate(&impl.stream, 0), "cuStreamCreate");
  if (!status.ok()) {
    return status;
  }

  // Memory: the arena once, then inputs, outputs and derived buffers.
  const size_t count = entry->buffers.size();
  impl.addresses.assign(count, 0);
  impl.inputSet.assign(count, false);
  if (entry->arenaBytes > 0) {
    status = impl.allocate(static_cast<size_t>(entry->arenaBytes),
                           absl::StrCat("the arena of entry ", entry->name),
                           impl.arena);
    if (!status.ok()) {
      return status;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    const BufferInfo &info = entry->buffers[i];
    switch (info.storage) {
    case Storage::Arena:
      impl.addresses[i] = impl.arena + static_cast<CUdeviceptr>(info.offset);
      break;
    case Storage::Input:
    case Storage::Output:
    case Storage::Derived:
    case Storage::State:
      status = impl.allocate(static_cast<size_t>(info.byteSize()),
                             absl::StrCat("buffer ", i), impl.addresses[i]);
      if (!status.ok()) {
        return status;
      }
      if (info.storage == Storage::Output) {
        impl.outputs[i].resize(static_cast<size_t>(info.byteSize()));
      }
      if (info.storage == Storage::State) {
        status =
            driver.check(driver.memsetD8(impl.addresses[i], 0,
                                         static_cast<size_t>(info.byteSize())),
                         absl::StrCat("zeroing state ", info.param));
        if (!status.ok()) {
          return status;
        }
      }
      break;
    case Storage::Param:
      break; // setWeights
    }
  }
  impl.updatesParams = updatesParameters(*entry);

  // Modules and functions: the cubin when there is one (the arch was checked
  // above), else the PTX, which the driver compiles for this device; also
  // the PTX when the driver refuses the cubin as not for this device (a
  // newer GPU of the same major version, or a driver that runs PTX only).
  auto loadModule = [&](const std::string &file, CUmodule &module) {
    const std::string *image = artifact.moduleImage(file);
    return image ? driver.moduleLoadData(&module, image->c_str())
                 : CUDA_ERROR_FILE_NOT_FOUND;
  };
  for (size_t c = 0; c < entry->calls.size(); ++c) {
    const CallInfo &call = entry->calls[c];
    const CudaKernelInfo *kernel = cuda.findKernel(call.kernel);
    std::string where =
        absl::StrCat(artifact.dir(), ": entries.", entry->name, ".calls[", c,
                     "] (kernel ", call.kernel, ")");
    if (!kernel) { // validateManifest rules this out
      return absl::InternalError(absl::StrCat(where, ": not in cuda.kernels"));
    }
    const std::string &file =
        kernel->cubin.empty() ? kernel->ptx : kernel->cubin;
    CUmodule module = nullptr;
    auto loadedModule = impl.modules.find(file);
    if (loadedModule != impl.modules.end()) {
      module = loadedModule->second;
    } else {
      if (!artifact.moduleImage(file)) {
        return absl::InternalError(absl::StrCat(
            where, ": ", file, " was not loaded with the artifact"));
      }
      CUresult result = loadModule(file, module);
      std::string tried = file;
      if ((result == CUDA_ERROR_NO_BINARY_FOR_GPU ||
           result == CUDA_ERROR_INVALID_IMAGE) &&
          file != kernel->ptx && artifact.moduleImage(kernel->ptx)) {
        std::string why = driver.errorText(result);
        result = loadModule(kernel->ptx, module);
        tried = absl::StrCat(kernel->ptx, " (after ", file, ": ", why, ")");
      }
      if (result != CUDA_SUCCESS) {
        return absl::FailedPreconditionError(absl::StrCat(
            where, ": cannot load ", tried, ": ", driver.errorText(result)));
      }
      impl.modules[file] = module;
    }
    Impl::Launch launch;
    launch.kernel = kernel;
    CUresult result = driver.moduleGetFunction(&launch.function, module,
                                               kernel->entry.c_str());
    if (result != CUDA_SUCCESS) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": no function ", kernel->entry, " in ", file,
                       ": ", driver.errorText(result)));
    }
    int maxThreads = 0;
    int staticShared = 0;
    if (driver.funcGetAttribute(&maxThreads,
                                CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                launch.function) == CUDA_SUCCESS &&
        driver.funcGetAttribute(&staticShared,
                                CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                                launch.function) == CUDA_SUCCESS) {
      int64_t threads = kernel->block[0] * kernel->block[1] * kernel->block[2];
      if (threads > maxThreads) {
        return absl::FailedPreconditionError(
            absl::StrCat(where, ": block of ", threads,
                         " threads, but the compiled kernel "
                         "runs at most ",
                         maxThreads, " per block on this device"));
      }
      if (staticShared > kernel->sharedBytes) {
        return absl::FailedPreconditionError(
            absl::StrCat(where, ": the module uses ", staticShared,
                         " bytes of static shared memory, the manifest says ",
                         kernel->sharedBytes));
      }
    }
    launch.values.assign(call.buffers.size(), 0);
    launch.params.resize(call.buffers.size());
    for (size_t a = 0; a < call.buffers.size(); ++a) {
      launch.params[a] = &launch.values[a];
    }
    impl.launches.push_back(std::move(launch));
  }

  status =
      session->setWeights(weights ? std::move(weights) : artifact.weights());
  if (!status.ok()) {
    return status;
  }
  return session;
}

absl::Status
CudaSession::setWeights(std::shared_ptr<const safetensors::File> weights) {
  if (!weights) {
    return absl::InvalidArgumentError("setWeights: no weights given");
  }
  if (weights != artifact_.weights()) {
    absl::Status status = artifact_.checkWeights(*weights, "weights");
    if (!status.ok()) {
      return status;
    }
  }
  Impl &impl = *impl_;
  absl::Status status = device_.makeCurrent();
  if (!status.ok()) {
    return status;
  }
  // Nothing may still read the old parameters.
  status = impl.driver->check(impl.driver->streamSynchronize(impl.stream),
                              "cuStreamSynchronize");
  if (!status.ok()) {
    return status;
  }
  impl.derivedValid = false;
  for (size_t i = 0; i < entry_.buffers.size(); ++i) {
    const BufferInfo &info = entry_.buffers[i];
    if (info.storage != Storage::Param) {
      continue;
    }
    // checkWeights guarantees presence, dtype and shape.
    const Tensor *tensor = weights->find(info.param);
    CUdeviceptr &address = impl.params[info.param];
    if (!address) {
      status = impl.allocate(tensor->bytes.size(),
                             absl::StrCat("parameter ", info.param), address);
      if (!status.ok()) {
        return status;
      }
    }
    impl.addresses[i] = address;
  }
  for (const auto &[name, address] : impl.params) {
    const Tensor *tensor = weights->find(name);
    status = impl.driver->check(impl.driver->memcpyHtoD(address,
                                                        tensor->bytes.data(),
                                                        tensor->bytes.size()),
                                absl::StrCat("uploading parameter ", name));
    if (!status.ok()) {
      return status;
    }
  }
  impl.weights = std::move(weights);
  impl.hostWeights.reset();
  impl.paramsChanged = false;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const safetensors::File>>
CudaSession::weights() const {
  Impl &impl = *impl_;
  if (!impl.paramsChanged) {
    return impl.hostWeights ? impl.hostWeights : impl.weights;
  }
  auto copy = std::make_shared<safetensors::File>(*impl.weights);
  absl::Status status = device_.makeCurrent();
  if (status.ok()) {
    // The last run may still write them.
    status = impl.driver->check(impl.driver->streamSynchronize(impl.stream),
                                "cuStreamSynchronize");
  }
  for (const auto &[name, address] : impl.params) {
    if (!status.ok()) {
      return status;
    }
    Tensor *tensor = copy->find(name);
    status = impl.driver->check(
        impl.driver->memcpyDtoH(tensor->bytes.data(), address,
                                tensor->bytes.size()),
        absl::StrCat("copying parameter ", name, " back"));
  }
  if (!status.ok()) {
    return status;
  }
  impl.hostWeights = std::move(copy);
  impl.paramsChanged = false;
  return std::shared_ptr<const safetensors::File>(impl.hostWeights);
}

std::vector<std::string> CudaSession::stateNames() const {
  return rt::stateNames(entry_);
}

absl::StatusOr<TensorView> CudaSession::state(const std::string &name) const {
  absl::StatusOr<size_t> index = stateIndex(entry_, name);
  if (!index.ok()) {
    return index.status();
  }
  const Impl &impl = *impl_;
  const BufferInfo &info = entry_.buffers[*index];
  std::vector<uint8_t> &bytes = impl.hostStates[*index];
  bytes.resize(static_cast<size_t>(info.byteSize()));
  absl::Status status = device_.makeCurrent();
  if (status.ok()) {
    status = impl.driver->check(impl.driver->memcpyDtoH(bytes.data(),
                                                        impl.addresses[*index],
                                                        bytes.size()),
                                absl::StrCat("copying state ", name, " back"));
  }
  if (!status.ok()) {
    return status;
  }
  return TensorView{info.dtype, &info.shape, bytes.data(), bytes.size()};
}

absl::Status CudaSession::setState(const std::string &name,
                                   const Tensor &value) {
  absl::StatusOr<size_t> index = checkState(entry_, name, value);
  if (!index.ok()) {
    return index.status();
  }
  Impl &impl = *impl_;
  absl::Status status = device_.makeCurrent();
  if (status.ok()) {
    status = impl.driver->check(impl.driver->streamSynchronize(impl.stream),
                                "cuStreamSynchronize");
  }
  if (!status.ok()) {
    return status;
  }
  return impl.driver->check(impl.driver->memcpyHtoD(impl.addresses[*index],
                                                    value.bytes.data(),
                                                    value.bytes.size()),
                            absl::StrCat("uploading state ", name));
}

absl::Status CudaSession::setInput(const std::string &name,
                                   const Tensor &value) {
  return setInput(name, value.dtype, value.shape, value.bytes.data(),
                  value.bytes.size());
}

absl::Status CudaSession::setInput(const std::string &name, DType dtype,
                                   const std::vector<int64_t> &shape,
                                   const void *data, size_t bytes) {
  absl::StatusOr<size_t> checked =
      checkInput(entry_, name, dtype, shape, data, bytes);
  if (!checked.ok()) {
    return checked.status();
  }
  const size_t index = *checked;
  Impl &impl = *impl_;
  absl::Status status = device_.makeCurrent();
  if (status.ok()) {
    // The previous run may still read this input.
    status = impl.driver->check(impl.driver->streamSynchronize(impl.stream),
                                "cuStreamSynchronize");
  }
  if (status.ok()) {
    status = impl.driver->check(
        impl.driver->memcpyHtoD(impl.addresses[index], data, bytes),
        absl::StrCat("uploading input \"", name, "\""));
  }
  if (!status.ok()) {
    return status;
  }
  impl.inputSet[index] = true;
  return absl::OkStatus();
}

absl::Status CudaSession::run(const RunOptions &options) {
  Impl &impl = *impl_;
  const CudaDriver &driver = *impl.driver;
  impl.hasRun = false;
  for (const Binding &input : entry_.inputs) {
    if (!impl.inputSet[static_cast<size_t>(input.buffer)]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input \"", input.name, "\" of entry ", entry_.name, " was not set"));
    }
  }
  absl::Status status = device_.makeCurrent();
  if (!status.ok()) {
    return status;
  }
  // Poison: 0xFF bytes are NaN in F32 and -1 in I32, as on the CPU.
  for (size_t i = 0; i < entry_.buffers.size(); ++i) {
    const BufferInfo &info = entry_.buffers[i];
    bool poison = (info.storage == Storage::Output && options.poisonOutputs);
    if (!poison) {
      continue;
    }
    status = driver.check(driver.memsetD8(impl.addresses[i], 0xFF,
                                          static_cast<size_t>(info.byteSize())),
                          absl::StrCat("poisoning buffer ", i));
    if (!status.ok()) {
      return status;
    }
  }
  if (options.poisonArena && impl.arena) {
    status =
        driver.check(driver.memsetD8(impl.arena, 0xFF,
                                     static_cast<size_t>(entry_.arenaBytes)),
                     "poisoning the arena");
    if (!status.ok()) {
      return status;
    }
  }
  const bool timed = options.callSeconds || options.onCall;
  if (options.callSeconds) {
    options.callSeconds->assign(entry_.calls.size(), 0.0);
  }
  auto failure = [&](size_t c, const char *what, CUresult result) {
    return absl::AbortedError(absl::StrCat(
        artifact_.dir(), ": entry ", entry_.name, ", call ", c, " (kernel ",
        entry_.calls[c].kernel, ") ", what, ": ", driver.errorText(result)));
  };
  // From the first launch on, the device's parameters may differ from the
  // host copies (a failed run may have updated some of them).
  if (impl.updatesParams) {
    impl.paramsChanged = true;
    impl.hostWeights.reset();
  }
  for (size_t c = 0; c < entry_.calls.size(); ++c) {
    const CallInfo &call = entry_.calls[c];
    if (call.once && impl.derivedValid) {
      continue; // computed from these weights by an earlier run
    }
    Impl::Launch &launch = impl.launches[c];
    for (size_t a = 0; a < call.buffers.size(); ++a) {
      launch.values[a] = impl.addresses[static_cast<size_t>(call.buffers[a])];
    }
    const CudaKernelInfo &k = *launch.kernel;
    auto start = std::chrono::steady_clock::now();
    // Shared memory is static (declared in the module): no dynamic bytes.
    CUresult result = driver.launchKernel(
        launch.function, static_cast<unsigned>(k.grid[0]),
        static_cast<unsigned>(k.grid[1]), static_cast<unsigned>(k.grid[2]),
        static_cast<unsigned>(k.block[0]), static_cast<unsigned>(k.block[1]),
        static_cast<unsigned>(k.block[2]), 0, impl.stream, launch.params.data(),
        nullptr);
    if (result != CUDA_SUCCESS) {
      return failure(c, "failed to launch", result);
    }
    if (timed) {
      result = driver.streamSynchronize(impl.stream);
      if (result != CUDA_SUCCESS) {
        return failure(c, "failed", result);
      }
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count();
      if (options.callSeconds) {
        (*options.callSeconds)[c] = seconds;
      }
      if (options.onCall) {
        options.onCall(c, call, seconds);
      }
    }
  }
  CUresult result = driver.streamSynchronize(impl.stream);
  if (result != CUDA_SUCCESS) {
    return absl::AbortedError(
        absl::StrCat(artifact_.dir(), ": entry ", entry_.name,
                     ": a kernel failed: ", driver.errorText(result)));
  }
  for (auto &[index, bytes] : impl.outputs) {
    status = driver.check(
        driver.memcpyDtoH(bytes.data(), impl.addresses[index], bytes.size()),
        absl::StrCat("copying output buffer ", index, " back"));
    if (!status.ok()) {
      return status;
    }
  }
  impl.hasRun = true;
  impl.derivedValid = true;
  return absl::OkStatus();
}

absl::StatusOr<TensorView>
CudaSession::outputView(const std::string &name) const {
  absl::StatusOr<size_t> buffer = outputIndex(entry_, name);
  if (!buffer.ok()) {
    return buffer.status();
  }
  if (!impl_->hasRun) {
    return absl::InvalidArgumentError(absl::StrCat("output \"", name,
                                                   "\" of entry ", entry_.name,
                                                   ": no successful run yet"));
  }
  const size_t index = *buffer;
  const BufferInfo &info = entry_.buffers[index];
  const std::vector<uint8_t> &bytes = impl_->outputs.at(index);
  TensorView view;
  view.dtype = info.dtype;
  view.shape = &info.shape;
  view.data = bytes.data();
  view.bytes = bytes.size();
  return view;
}

absl::StatusOr<Tensor> CudaSession::output(const std::string &name) const {
  absl::StatusOr<TensorView> view = outputView(name);
  if (!view.ok()) {
    return view.status();
  }
  return view->copy();
}

} // namespace synth::rt
