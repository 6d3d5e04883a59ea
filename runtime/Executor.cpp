//===- Executor.cpp - binding buffers and calling Halide kernels ----------===//
//
// Everything a run needs is prepared when the session is created: storage,
// one halide_buffer_t per plan buffer, and per call the argument array and
// the kernel's address. A run then only poisons the outputs, resets the
// buffers' flags and calls the kernels, so it allocates nothing.
//
//===----------------------------------------------------------------------===//

#include "runtime/Executor.h"

#include "HalideRuntime.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

namespace synth::rt {

namespace {

//===----------------------------------------------------------------------===//
// Calling a kernel with N buffer arguments
//===----------------------------------------------------------------------===//

using BufferPtr = halide_buffer_t *;
using Invoker = int (*)(KernelAddress, BufferPtr *);

// One invoker per argument count, so that a kernel is called through a
// pointer of its exact C type int(halide_buffer_t *, ...) (N times).
template <size_t... I>
int invokeUnpacked(KernelAddress kernel, BufferPtr *args,
                   std::index_sequence<I...>) {
  using Kernel = int (*)(decltype((void)I, BufferPtr{})...);
  return reinterpret_cast<Kernel>(kernel)(args[I]...);
}

template <size_t N> int invoke(KernelAddress kernel, BufferPtr *args) {
  return invokeUnpacked(kernel, args, std::make_index_sequence<N>{});
}

template <size_t... N>
constexpr std::array<Invoker, sizeof...(N)>
makeInvokers(std::index_sequence<N...>) {
  return {&invoke<N>...};
}

constexpr std::array<Invoker, kMaxKernelArguments + 1> kInvokers =
    makeInvokers(std::make_index_sequence<kMaxKernelArguments + 1>{});

//===----------------------------------------------------------------------===//
// Storage
//===----------------------------------------------------------------------===//

/// Zero or more bytes, 64-byte aligned (kernels vectorize best on aligned
/// rows, and the arena's offsets are multiples of 64 from this base).
class AlignedBytes {
public:
  AlignedBytes() = default;
  absl::Status allocate(size_t size, const std::string &what) {
    size_t rounded = (std::max<size_t>(size, 1) + kArenaAlignment - 1) /
                     kArenaAlignment * kArenaAlignment;
    data_.reset(static_cast<uint8_t *>(
        std::aligned_alloc(static_cast<size_t>(kArenaAlignment), rounded)));
    if (!data_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", size, " bytes for ", what));
    }
    size_ = size;
    return absl::OkStatus();
  }
  uint8_t *data() const { return data_.get(); }
  size_t size() const { return size_; }

private:
  struct Free {
    void operator()(uint8_t *p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

halide_type_t halideType(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return halide_type_t(halide_type_float, 32);
  case DType::I32:
    return halide_type_t(halide_type_int, 32);
  default:
    return halide_type_t(halide_type_uint, 8);
  }
}

std::string describe(DType dtype, const std::vector<int64_t> &shape) {
  return absl::StrCat(dtypeName(dtype), " ", formatShape(shape));
}

std::string bindingNames(const std::vector<Binding> &bindings) {
  std::vector<std::string> names;
  for (const Binding &binding : bindings) {
    names.push_back(binding.name);
  }
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

} // namespace

struct Session::Impl {
  std::shared_ptr<const safetensors::File> weights;
  AlignedBytes arena;
  /// Per plan buffer: storage of inputs and outputs (empty otherwise).
  std::vector<AlignedBytes> storage;
  std::vector<bool> inputSet;
  /// Per plan buffer: its dimensions (innermost first) and descriptor.
  std::vector<std::vector<halide_dimension_t>> dims;
  std::vector<halide_buffer_t> buffers;
  /// Per call: the kernel and its argument array.
  std::vector<KernelAddress> kernels;
  std::vector<std::vector<BufferPtr>> args;
  bool hasRun = false;
  /// Derived buffers hold the results of the once calls for the weights
  /// bound now (reset by setWeights).
  bool derivedValid = false;
  /// Entries that update parameters in place run on this private copy of
  /// the weights (null otherwise; `weights` then points at the caller's).
  std::shared_ptr<safetensors::File> ownWeights;
};

bool updatesParameters(const EntryInfo &entry) {
  for (int64_t index : entry.updates) {
    if (entry.buffers[static_cast<size_t>(index)].storage == Storage::Param) {
      return true;
    }
  }
  return false;
}

Session::Session(const Artifact &artifact, const EntryInfo &entry)
    : artifact_(artifact), entry_(entry), impl_(std::make_unique<Impl>()) {}

Session::~Session() = default;

absl::StatusOr<std::unique_ptr<Session>>
Session::create(const Artifact &artifact, const std::string &entryName,
                std::shared_ptr<const safetensors::File> weights) {
  if (artifact.device() != DeviceKind::Cpu) {
    return absl::FailedPreconditionError(absl::StrCat(
        artifact.dir(), ": loaded for CUDA; run it with a CudaSession"));
  }
  const EntryInfo *entry = artifact.entry(entryName);
  if (!entry) {
    std::vector<std::string> names;
    for (const EntryInfo &e : artifact.manifest().entries) {
      names.push_back(e.name);
    }
    return absl::NotFoundError(absl::StrCat(
        artifact.dir(), ": no entry point \"", entryName,
        "\" (the artifact has: ", absl::StrJoin(names, ", "), ")"));
  }
  std::unique_ptr<Session> session(new Session(artifact, *entry));
  Impl &impl = *session->impl_;
  const size_t count = entry->buffers.size();

  // Storage: the arena once, inputs and outputs per buffer.
  absl::Status status =
      impl.arena.allocate(static_cast<size_t>(entry->arenaBytes),
                          absl::StrCat("the arena of entry ", entry->name));
  if (!status.ok()) {
    return status;
  }
  impl.storage.resize(count);
  impl.inputSet.assign(count, false);
  impl.dims.resize(count);
  impl.buffers.assign(count, halide_buffer_t{});
  for (size_t i = 0; i < count; ++i) {
    const BufferInfo &info = entry->buffers[i];
    if (info.storage == Storage::Input || info.storage == Storage::Output ||
        info.storage == Storage::Derived || info.storage == Storage::State) {
      status = impl.storage[i].allocate(static_cast<size_t>(info.byteSize()),
                                        absl::StrCat("buffer ", i));
      if (!status.ok()) {
        return status;
      }
      if (info.storage == Storage::State) {
        std::memset(impl.storage[i].data(), 0, impl.storage[i].size());
      }
    }
    // Kernel ABI: dim[i] describes shape[n-1-i], innermost first, with
    // row-major dense strides in elements.
    const size_t rank = info.shape.size();
    std::vector<halide_dimension_t> &dims = impl.dims[i];
    dims.resize(rank);
    int64_t stride = 1;
    for (size_t d = 0; d < rank; ++d) {
      int64_t extent = info.shape[rank - 1 - d];
      if (extent > std::numeric_limits<int32_t>::max() ||
          stride > std::numeric_limits<int32_t>::max()) {
        return absl::InvalidArgumentError(
            absl::StrCat(artifact.dir(), ": entries.", entry->name, ".buffers[",
                         i, "]: shape ", formatShape(info.shape),
                         " exceeds Halide's 32-bit extents and strides"));
      }
      dims[d] = halide_dimension_t(0, static_cast<int32_t>(extent),
                                   static_cast<int32_t>(stride));
      stride *= extent;
    }
    halide_buffer_t &buffer = impl.buffers[i];
    buffer.type = halideType(info.dtype);
    buffer.dimensions = static_cast<int32_t>(rank);
    buffer.dim = rank ? dims.data() : nullptr;
    switch (info.storage) {
    case Storage::Input:
    case Storage::Output:
    case Storage::Derived:
    case Storage::State:
      buffer.host = impl.storage[i].data();
      break;
    case Storage::Arena:
      buffer.host = impl.arena.data() + info.offset;
      break;
    case Storage::Param:
      break; // bound by setWeights below
    }
  }

  for (const CallInfo &call : entry->calls) {
    impl.kernels.push_back(artifact.kernel(call.kernel));
    std::vector<BufferPtr> args;
    for (int64_t index : call.buffers) {
      args.push_back(&impl.buffers[static_cast<size_t>(index)]);
    }
    impl.args.push_back(std::move(args));
  }

  status =
      session->setWeights(weights ? std::move(weights) : artifact.weights());
  if (!status.ok()) {
    return status;
  }
  return session;
}

absl::Status
Session::setWeights(std::shared_ptr<const safetensors::File> weights) {
  if (!weights) {
    return absl::InvalidArgumentError("setWeights: no weights given");
  }
  if (weights != artifact_.weights()) {
    absl::Status status = artifact_.checkWeights(*weights, "weights");
    if (!status.ok()) {
      return status;
    }
  }
  // An entry that updates parameters in place writes into its own copy;
  // the caller's weights stay as they were.
  if (updatesParameters(entry_)) {
    impl_->ownWeights = std::make_shared<safetensors::File>(*weights);
    weights = impl_->ownWeights;
  }
  for (size_t i = 0; i < entry_.buffers.size(); ++i) {
    const BufferInfo &info = entry_.buffers[i];
    if (info.storage != Storage::Param) {
      continue;
    }
    // checkWeights guarantees presence, dtype and shape. Kernels only write
    // parameters in the private copy above.
    const Tensor *tensor = weights->find(info.param);
    impl_->buffers[i].host = const_cast<uint8_t *>(tensor->bytes.data());
  }
  impl_->weights = std::move(weights);
  impl_->derivedValid = false;
  return absl::OkStatus();
}

absl::Status Session::setInput(const std::string &name, const Tensor &value) {
  return setInput(name, value.dtype, value.shape, value.bytes.data(),
                  value.bytes.size());
}

absl::StatusOr<size_t> checkInput(const EntryInfo &entry,
                                  const std::string &name, DType dtype,
                                  const std::vector<int64_t> &shape,
                                  const void *data, size_t bytes) {
  const Binding *binding = entry.findInput(name);
  if (!binding) {
    return absl::NotFoundError(
        absl::StrCat("entry ", entry.name, " has no input \"", name,
                     "\" (its inputs: ", bindingNames(entry.inputs), ")"));
  }
  const size_t index = static_cast<size_t>(binding->buffer);
  const BufferInfo &info = entry.buffers[index];
  const bool dtypeOk =
      dtype == info.dtype || (info.dtype == DType::U8 && dtype == DType::Bool);
  if (!dtypeOk || shape != info.shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input \"", name, "\" of entry ", entry.name, " is ",
        describe(info.dtype, info.shape), ", got ", describe(dtype, shape)));
  }
  if (bytes != static_cast<size_t>(info.byteSize()) || (bytes > 0 && !data)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input \"", name, "\": ", bytes, " bytes given, ",
        describe(info.dtype, info.shape), " needs ", info.byteSize()));
  }
  if (info.dtype == DType::U8) {
    // U8 buffers are boolean masks (docs/artifact-format.md).
    const uint8_t *values = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < bytes; ++i) {
      if (values[i] > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("input \"", name, "\": element ", i, " is ",
                         int(values[i]), ", but a U8 mask holds 0 or 1"));
      }
    }
  }
  return index;
}

absl::StatusOr<size_t> outputIndex(const EntryInfo &entry,
                                   const std::string &name) {
  const Binding *binding = entry.findOutput(name);
  if (!binding) {
    return absl::NotFoundError(
        absl::StrCat("entry ", entry.name, " has no output \"", name,
                     "\" (its outputs: ", bindingNames(entry.outputs), ")"));
  }
  return static_cast<size_t>(binding->buffer);
}

absl::Status Session::setInput(const std::string &name, DType dtype,
                               const std::vector<int64_t> &shape,
                               const void *data, size_t bytes) {
  absl::StatusOr<size_t> index =
      checkInput(entry_, name, dtype, shape, data, bytes);
  if (!index.ok()) {
    return index.status();
  }
  std::memcpy(impl_->storage[*index].data(), data, bytes);
  impl_->inputSet[*index] = true;
  return absl::OkStatus();
}

absl::Status Session::run(const RunOptions &options) {
  Impl &impl = *impl_;
  impl.hasRun = false;
  for (const Binding &input : entry_.inputs) {
    if (!impl.inputSet[static_cast<size_t>(input.buffer)]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input \"", input.name, "\" of entry ", entry_.name, " was not set"));
    }
  }
  for (size_t i = 0; i < entry_.buffers.size(); ++i) {
    const BufferInfo &info = entry_.buffers[i];
    // Halide may have set host_dirty or other flags on outputs last run.
    impl.buffers[i].flags = 0;
    impl.buffers[i].device = 0;
    impl.buffers[i].device_interface = nullptr;
    if (info.storage != Storage::Output || !options.poisonOutputs) {
      continue;
    }
    uint8_t *bytes = impl.storage[i].data();
    if (info.dtype == DType::F32) {
      float *values = reinterpret_cast<float *>(bytes);
      std::fill(values, values + info.numel(),
                std::numeric_limits<float>::quiet_NaN());
    } else {
      std::memset(bytes, 0xFF, static_cast<size_t>(info.byteSize()));
    }
  }
  if (options.poisonArena) {
    float *values = reinterpret_cast<float *>(impl.arena.data());
    std::fill(values, values + impl.arena.size() / sizeof(float),
              std::numeric_limits<float>::quiet_NaN());
  }
  const bool timed = options.callSeconds || options.onCall;
  if (options.callSeconds) {
    options.callSeconds->assign(entry_.calls.size(), 0.0);
  }
  // Forget any message left by an earlier failure.
  artifact_.takeKernelError();
  for (size_t c = 0; c < entry_.calls.size(); ++c) {
    if (entry_.calls[c].once && impl.derivedValid) {
      continue; // computed from these weights by an earlier run
    }
    std::vector<BufferPtr> &args = impl.args[c];
    Invoker invoker = kInvokers[args.size()];
    int result;
    if (timed) {
      auto start = std::chrono::steady_clock::now();
      result = invoker(impl.kernels[c], args.data());
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count();
      if (options.callSeconds) {
        (*options.callSeconds)[c] = seconds;
      }
      if (options.onCall && result == 0) {
        options.onCall(c, entry_.calls[c], seconds);
      }
    } else {
      result = invoker(impl.kernels[c], args.data());
    }
    if (result != 0) {
      std::string message = artifact_.takeKernelError();
      return absl::AbortedError(absl::StrCat(
          artifact_.dir(), ": entry ", entry_.name, ", call ", c, " (kernel ",
          entry_.calls[c].kernel, ") failed with Halide error ", result, ": ",
          message.empty() ? "(no message recorded)" : message));
    }
  }
  impl.hasRun = true;
  impl.derivedValid = true;
  return absl::OkStatus();
}

absl::StatusOr<TensorView> Session::outputView(const std::string &name) const {
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
  TensorView view;
  view.dtype = info.dtype;
  view.shape = &info.shape;
  view.data = impl_->storage[index].data();
  view.bytes = static_cast<size_t>(info.byteSize());
  return view;
}

Tensor TensorView::copy() const {
  Tensor tensor;
  tensor.dtype = dtype;
  tensor.shape = *shape;
  const uint8_t *begin = static_cast<const uint8_t *>(data);
  tensor.bytes.assign(begin, begin + bytes);
  return tensor;
}

absl::StatusOr<Tensor> Session::output(const std::string &name) const {
  absl::StatusOr<TensorView> view = outputView(name);
  if (!view.ok()) {
    return view.status();
  }
  return view->copy();
}

std::shared_ptr<const safetensors::File> Session::weights() const {
  return impl_->weights;
}

std::vector<std::string> stateNames(const EntryInfo &entry) {
  std::vector<std::string> names;
  for (const BufferInfo &info : entry.buffers) {
    if (info.storage == Storage::State) {
      names.push_back(info.param);
    }
  }
  return names;
}

std::vector<std::string> Session::stateNames() const {
  return rt::stateNames(entry_);
}

absl::StatusOr<size_t> stateIndex(const EntryInfo &entry,
                                  const std::string &name) {
  for (size_t i = 0; i < entry.buffers.size(); ++i) {
    if (entry.buffers[i].storage == Storage::State &&
        entry.buffers[i].param == name) {
      return i;
    }
  }
  return absl::NotFoundError(
      absl::StrCat("entry ", entry.name, " has no state \"", name, "\""));
}

absl::StatusOr<TensorView> Session::state(const std::string &name) const {
  absl::StatusOr<size_t> index = stateIndex(entry_, name);
  if (!index.ok()) {
    return index.status();
  }
  const BufferInfo &info = entry_.buffers[*index];
  return TensorView{info.dtype, &info.shape, impl_->storage[*index].data(),
                    static_cast<size_t>(info.byteSize())};
}

absl::StatusOr<size_t> checkState(const EntryInfo &entry,
                                  const std::string &name,
                                  const Tensor &value) {
  absl::StatusOr<size_t> index = stateIndex(entry, name);
  if (!index.ok()) {
    return index.status();
  }
  const BufferInfo &info = entry.buffers[*index];
  if (value.dtype != info.dtype || value.shape != info.shape ||
      value.bytes.size() != static_cast<size_t>(info.byteSize())) {
    return absl::InvalidArgumentError(
        absl::StrCat("state \"", name, "\" of entry ", entry.name, " is ",
                     describe(info.dtype, info.shape), ", got ",
                     describe(value.dtype, value.shape)));
  }
  return index;
}

absl::Status Session::setState(const std::string &name, const Tensor &value) {
  absl::StatusOr<size_t> index = checkState(entry_, name, value);
  if (!index.ok()) {
    return index.status();
  }
  std::memcpy(impl_->storage[*index].data(), value.bytes.data(),
              value.bytes.size());
  return absl::OkStatus();
}

} // namespace synth::rt
