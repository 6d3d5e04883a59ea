//===- Artifact.cpp - loading and validating an artifact ------------------===//
//
// The checks run in order of cost and of how much they explain: the manifest
// (format, version, consistency), the files it lists (size, then SHA-256),
// the CPU, then dlopen and symbols, then the weights. kernels.so is opened
// RTLD_LOCAL so that two artifacts (each with its own copy of the Halide
// runtime) never resolve each other's symbols.
//
//===----------------------------------------------------------------------===//

#include "runtime/Artifact.h"

#include "runtime/CpuFeatures.h"
#include "runtime/FileUtil.h"
#include "runtime/Sha256.h"

#include "absl/strings/str_cat.h"

#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <set>
#include <sys/stat.h>

namespace synth::rt {

namespace {

//===----------------------------------------------------------------------===//
// Halide errors
//===----------------------------------------------------------------------===//

// Halide's default error handler prints and aborts; ours records the message
// so the executor can return it as a Status. Halide calls the handler on the
// thread that raised the error: usually the caller's, but a worker thread of
// a parallel loop may raise one too, hence the process-wide fallback.
thread_local std::string tLastKernelError;
std::mutex gKernelErrorMutex;
std::string gLastKernelError;

void recordHalideError(void * /*userContext*/, const char *message) {
  std::string text = message ? message : "(no message)";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  tLastKernelError = text;
  std::lock_guard<std::mutex> lock(gKernelErrorMutex);
  gLastKernelError = text;
}

using ErrorHandler = void (*)(void *, const char *);
using SetErrorHandler = ErrorHandler (*)(ErrorHandler);

std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty()) {
    return name;
  }
  return dir.back() == '/' ? dir + name : absl::StrCat(dir, "/", name);
}

absl::Status fail(const std::string &dir, const std::string &what) {
  return absl::InvalidArgumentError(absl::StrCat(dir, ": ", what));
}

} // namespace

absl::StatusOr<std::unique_ptr<Artifact>> Artifact::load(const std::string &dir,
                                                         DeviceKind device) {
  struct stat info;
  if (::stat(dir.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(
        dir, ": cannot open the artifact directory: ", std::strerror(errno)));
  }
  if (!S_ISDIR(info.st_mode)) {
    return fail(dir, "not a directory (an artifact is a directory holding "
                     "manifest.json, kernels.so and weights.safetensors)");
  }
  std::unique_ptr<Artifact> artifact(new Artifact());
  artifact->dir_ = dir;
  artifact->device_ = device;
  absl::StatusOr<Manifest> manifest =
      readManifest(joinPath(dir, "manifest.json"));
  if (!manifest.ok()) {
    return manifest.status();
  }
  artifact->manifest_ = std::move(*manifest);
  const Manifest &m = artifact->manifest_;

  const CpuFeatures &cpu = hostCpuFeatures();
  const bool forCuda = device == DeviceKind::Cuda;
  if (m.target.kind != (forCuda ? "cuda" : "cpu")) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": the artifact's target is ", m.target.kind, " (", m.target.arch,
        "); it cannot run on the ", forCuda ? "CUDA device" : "CPU",
        m.target.kind == "cuda"  ? " (use --device=cuda)"
        : m.target.kind == "cpu" ? " (use --device=cpu)"
                                 : ""));
  }
  // Files a CUDA device loads as modules; their checked bytes are kept.
  std::set<std::string> moduleFiles;
  if (forCuda && m.cuda) {
    for (const CudaKernelInfo &kernel : m.cuda->kernels) {
      moduleFiles.insert(kernel.ptx);
      if (!kernel.cubin.empty()) {
        moduleFiles.insert(kernel.cubin);
      }
    }
  }
  if (!forCuda && m.target.arch != cpu.arch) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": the artifact is for ", m.target.arch,
                     ", this machine is ", cpu.arch));
  }

  // Files: size first (cheap, and the usual symptom of truncation), then the
  // checksum. The weights' bytes are kept and parsed below, so the bytes
  // checked are the bytes used.
  std::string weightsBytes;
  for (const FileInfo &file : m.files) {
    std::string path = joinPath(dir, file.name);
    struct stat fileInfo;
    if (::stat(path.c_str(), &fileInfo) != 0) {
      return absl::NotFoundError(absl::StrCat(
          dir, ": missing file ", file.name, " listed in manifest.json (", path,
          ": ", std::strerror(errno), ")"));
    }
    if (!S_ISREG(fileInfo.st_mode)) {
      return fail(dir, absl::StrCat(file.name, " is not a regular file"));
    }
    if (static_cast<int64_t>(fileInfo.st_size) != file.bytes) {
      return fail(dir, absl::StrCat("size mismatch for ", file.name,
                                    ": manifest says ", file.bytes,
                                    " bytes, file has ", fileInfo.st_size));
    }
    absl::StatusOr<std::string> bytes = readFileBytes(path);
    if (!bytes.ok()) {
      return bytes.status();
    }
    if (static_cast<int64_t>(bytes->size()) != file.bytes) {
      return fail(dir, absl::StrCat(file.name, " changed while it was read"));
    }
    std::string digest = sha256Hex(*bytes);
    if (digest != file.sha256) {
      return fail(dir, absl::StrCat("checksum mismatch for ", file.name,
                                    ": manifest says ", file.sha256,
                                    ", file has ", digest));
    }
    if (file.name == "weights.safetensors") {
      weightsBytes = std::move(*bytes);
    } else if (moduleFiles.count(file.name)) {
      artifact->moduleImages_[file.name] = std::move(*bytes);
    }
  }
  if (forCuda) {
    return finishLoading(std::move(artifact), weightsBytes);
  }

  absl::Status features = checkRequiredFeatures(m.target.requiredFeatures, cpu);
  if (!features.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": cannot run on this CPU: ", features.message(),
                     "; recompile with a --cpu that matches this machine"));
  }

  // kernels.so. A path with a slash makes dlopen open exactly this file
  // instead of searching the library path.
  std::string library = joinPath(dir, "kernels.so");
  if (library.find('/') == std::string::npos) {
    library = "./" + library;
  }
  dlerror();
  artifact->library_ = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!artifact->library_) {
    const char *why = dlerror();
    return fail(dir, absl::StrCat("cannot load kernels.so: ",
                                  why ? why : "unknown dlopen error"));
  }
  auto symbol = [&](const std::string &name) {
    return ::dlsym(artifact->library_, name.c_str());
  };
  auto setErrorHandler =
      reinterpret_cast<SetErrorHandler>(symbol("halide_set_error_handler"));
  artifact->setNumThreads_ =
      reinterpret_cast<int (*)(int)>(symbol("halide_set_num_threads"));
  for (const auto &[name, found] :
       {std::pair<const char *, bool>{"halide_set_error_handler",
                                      setErrorHandler != nullptr},
        {"halide_set_num_threads", artifact->setNumThreads_ != nullptr}}) {
    if (!found) {
      return fail(dir, absl::StrCat("kernels.so does not export ", name,
                                    " (it must include the Halide runtime)"));
    }
  }
  setErrorHandler(&recordHalideError);
  artifact->shutdownThreadPool_ =
      reinterpret_cast<void (*)()>(symbol("halide_shutdown_thread_pool"));
  for (const EntryInfo &entry : m.entries) {
    for (size_t c = 0; c < entry.calls.size(); ++c) {
      const std::string &kernel = entry.calls[c].kernel;
      if (artifact->kernels_.count(kernel)) {
        continue;
      }
      KernelAddress address = symbol(kernel);
      if (!address) {
        return fail(dir, absl::StrCat("kernel ", kernel,
                                      " not found in kernels.so (entries.",
                                      entry.name, ".calls[", c, "])"));
      }
      artifact->kernels_[kernel] = address;
    }
  }

  return finishLoading(std::move(artifact), weightsBytes);
}

absl::StatusOr<std::unique_ptr<Artifact>>
Artifact::finishLoading(std::unique_ptr<Artifact> artifact,
                        const std::string &weightsBytes) {
  const std::string &dir = artifact->dir_;
  const Manifest &m = artifact->manifest_;
  std::string weightsPath = joinPath(dir, "weights.safetensors");
  safetensors::File weights;
  if (m.findFile("weights.safetensors")) {
    absl::StatusOr<safetensors::File> parsed =
        safetensors::parse(weightsBytes, weightsPath);
    if (!parsed.ok()) {
      return parsed.status();
    }
    weights = std::move(*parsed);
  }
  absl::Status checked = artifact->checkWeights(weights, weightsPath);
  if (!checked.ok()) {
    return checked;
  }
  artifact->weights_ =
      std::make_shared<const safetensors::File>(std::move(weights));
  return artifact;
}

Artifact::~Artifact() {
  if (library_) {
    // Join the Halide thread pool's workers before their code is unmapped.
    if (shutdownThreadPool_) {
      shutdownThreadPool_();
    }
    ::dlclose(library_);
  }
}

absl::Status Artifact::checkWeights(const safetensors::File &weights,
                                    const std::string &source) const {
  std::set<std::string> expected;
  for (const ParameterInfo &param : manifest_.parameters) {
    expected.insert(param.name);
    const Tensor *tensor = weights.find(param.name);
    if (!tensor) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": missing parameter \"", param.name,
                       "\" of shape ", formatShape(param.shape)));
    }
    if (tensor->dtype != param.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": parameter \"", param.name, "\" has dtype ",
          dtypeName(tensor->dtype), ", expected ", dtypeName(param.dtype)));
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

const std::string *Artifact::moduleImage(const std::string &file) const {
  auto it = moduleImages_.find(file);
  return it == moduleImages_.end() ? nullptr : &it->second;
}

KernelAddress Artifact::kernel(const std::string &name) const {
  auto it = kernels_.find(name);
  return it == kernels_.end() ? nullptr : it->second;
}

absl::StatusOr<int> Artifact::setNumThreads(int threads) {
  if (!setNumThreads_) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir_, ": --threads applies to cpu artifacts (this one "
                           "was loaded for the CUDA device)"));
  }
  if (threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "thread count must be >= 0 (0: one per CPU), got ", threads));
  }
  return setNumThreads_(threads);
}

std::string Artifact::takeKernelError() const {
  std::string message;
  std::swap(message, tLastKernelError);
  std::lock_guard<std::mutex> lock(gKernelErrorMutex);
  if (message.empty()) {
    message = gLastKernelError;
  }
  gLastKernelError.clear();
  return message;
}

} // namespace synth::rt
