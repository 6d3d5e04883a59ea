//===- CApi.cpp - the C API of libsynthrt (synthrt.h) ---------------------===//
//
// Thin handles over Artifact and Session. Handles share ownership of the
// artifact, so freeing an artifact before its sessions is safe. No C++
// exception crosses this boundary: each entry point catches and reports.
//
//===----------------------------------------------------------------------===//

#include "runtime/synthrt.h"

#include "runtime/Executor.h"

#include <exception>
#include <memory>
#include <new>
#include <string>

using synth::DType;
using synth::rt::Artifact;
using synth::rt::Session;

struct synth_artifact {
  std::shared_ptr<Artifact> artifact;
  std::string error;
};

struct synth_session {
  std::shared_ptr<Artifact> artifact;
  std::unique_ptr<Session> session;
  std::string error;
};

namespace {

thread_local std::string tLastError;

synth_status toStatus(const absl::Status &status) {
  switch (status.code()) {
  case absl::StatusCode::kOk:
    return SYNTH_OK;
  case absl::StatusCode::kInvalidArgument:
  case absl::StatusCode::kOutOfRange:
  case absl::StatusCode::kDataLoss:
  case absl::StatusCode::kPermissionDenied:
    return SYNTH_ERROR_INVALID_ARGUMENT;
  case absl::StatusCode::kNotFound:
    return SYNTH_ERROR_NOT_FOUND;
  case absl::StatusCode::kFailedPrecondition:
  case absl::StatusCode::kUnimplemented:
    return SYNTH_ERROR_UNSUPPORTED;
  case absl::StatusCode::kAborted:
    return SYNTH_ERROR_KERNEL;
  case absl::StatusCode::kResourceExhausted:
    return SYNTH_ERROR_OUT_OF_MEMORY;
  default:
    return SYNTH_ERROR_INTERNAL;
  }
}

/// Records `status` as the thread's last error (and in `slot`, when given).
synth_status report(const absl::Status &status, std::string *slot = nullptr) {
  if (status.ok()) {
    return SYNTH_OK;
  }
  tLastError = std::string(status.message());
  if (slot) {
    *slot = tLastError;
  }
  return toStatus(status);
}

synth_status invalid(const char *what, std::string *slot = nullptr) {
  return report(absl::InvalidArgumentError(what), slot);
}

/// Runs `body`, turning any escaping exception into a status.
template <typename Body> synth_status guarded(std::string *slot, Body &&body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return report(absl::ResourceExhaustedError("out of memory"), slot);
  } catch (const std::exception &e) {
    return report(absl::InternalError(e.what()), slot);
  } catch (...) {
    return report(absl::InternalError("unknown C++ exception"), slot);
  }
}

bool toDType(synth_dtype dtype, DType &out) {
  switch (dtype) {
  case SYNTH_DTYPE_F32:
    out = DType::F32;
    return true;
  case SYNTH_DTYPE_I32:
    out = DType::I32;
    return true;
  case SYNTH_DTYPE_U8:
    out = DType::U8;
    return true;
  }
  return false;
}

synth_dtype fromDType(DType dtype) {
  switch (dtype) {
  case DType::I32:
    return SYNTH_DTYPE_I32;
  case DType::U8:
  case DType::Bool:
    return SYNTH_DTYPE_U8;
  default:
    return SYNTH_DTYPE_F32;
  }
}

synth_status bindingInfo(const synth_session *session, bool inputs, int index,
                         const char **name, synth_dtype *dtype, int *rank,
                         const int64_t **shape) {
  if (!session || !session->session) {
    return invalid("no session");
  }
  const synth::rt::EntryInfo &entry = session->session->entry();
  const auto &bindings = inputs ? entry.inputs : entry.outputs;
  if (index < 0 || static_cast<size_t>(index) >= bindings.size()) {
    return report(absl::OutOfRangeError(
        std::string(inputs ? "input" : "output") + " index " +
        std::to_string(index) + " out of range (entry has " +
        std::to_string(bindings.size()) + ")"));
  }
  const synth::rt::Binding &binding = bindings[static_cast<size_t>(index)];
  const synth::rt::BufferInfo &buffer =
      entry.buffers[static_cast<size_t>(binding.buffer)];
  if (name) {
    *name = binding.name.c_str();
  }
  if (dtype) {
    *dtype = fromDType(buffer.dtype);
  }
  if (rank) {
    *rank = static_cast<int>(buffer.shape.size());
  }
  if (shape) {
    *shape = buffer.shape.data();
  }
  return SYNTH_OK;
}

} // namespace

extern "C" {

const char *synth_last_error(void) { return tLastError.c_str(); }

const char *synth_status_name(synth_status status) {
  switch (status) {
  case SYNTH_OK:
    return "ok";
  case SYNTH_ERROR_INVALID_ARGUMENT:
    return "invalid argument";
  case SYNTH_ERROR_NOT_FOUND:
    return "not found";
  case SYNTH_ERROR_UNSUPPORTED:
    return "unsupported";
  case SYNTH_ERROR_KERNEL:
    return "kernel error";
  case SYNTH_ERROR_OUT_OF_MEMORY:
    return "out of memory";
  case SYNTH_ERROR_INTERNAL:
    return "internal error";
  }
  return "unknown status";
}

const char *synth_dtype_name(synth_dtype dtype) {
  switch (dtype) {
  case SYNTH_DTYPE_F32:
    return "F32";
  case SYNTH_DTYPE_I32:
    return "I32";
  case SYNTH_DTYPE_U8:
    return "U8";
  }
  return "?";
}

synth_status synth_artifact_load(const char *dir, synth_artifact **out) {
  if (!out) {
    return invalid("synth_artifact_load: out is NULL");
  }
  *out = nullptr;
  auto *handle = new (std::nothrow) synth_artifact();
  if (!handle) {
    return report(absl::ResourceExhaustedError("out of memory"));
  }
  *out = handle;
  if (!dir) {
    return invalid("synth_artifact_load: dir is NULL", &handle->error);
  }
  return guarded(&handle->error, [&] {
    absl::StatusOr<std::unique_ptr<Artifact>> artifact = Artifact::load(dir);
    if (!artifact.ok()) {
      return report(artifact.status(), &handle->error);
    }
    handle->artifact = std::move(*artifact);
    return SYNTH_OK;
  });
}

const char *synth_artifact_error(const synth_artifact *artifact) {
  return artifact ? artifact->error.c_str() : "no artifact";
}

synth_status synth_artifact_set_num_threads(synth_artifact *artifact,
                                            int threads) {
  if (!artifact || !artifact->artifact) {
    return invalid("synth_artifact_set_num_threads: no loaded artifact",
                   artifact ? &artifact->error : nullptr);
  }
  absl::StatusOr<int> previous = artifact->artifact->setNumThreads(threads);
  return report(previous.status(), &artifact->error);
}

int synth_artifact_num_entries(const synth_artifact *artifact) {
  if (!artifact || !artifact->artifact) {
    return 0;
  }
  return static_cast<int>(artifact->artifact->manifest().entries.size());
}

const char *synth_artifact_entry_name(const synth_artifact *artifact,
                                      int index) {
  if (index < 0 || index >= synth_artifact_num_entries(artifact)) {
    return nullptr;
  }
  return artifact->artifact->manifest()
      .entries[static_cast<size_t>(index)]
      .name.c_str();
}

void synth_artifact_free(synth_artifact *artifact) { delete artifact; }

synth_status synth_session_create(synth_artifact *artifact, const char *entry,
                                  synth_session **out) {
  if (!out) {
    return invalid("synth_session_create: out is NULL");
  }
  *out = nullptr;
  auto *handle = new (std::nothrow) synth_session();
  if (!handle) {
    return report(absl::ResourceExhaustedError("out of memory"));
  }
  *out = handle;
  if (!artifact || !artifact->artifact) {
    return invalid("synth_session_create: no loaded artifact", &handle->error);
  }
  if (!entry) {
    return invalid("synth_session_create: entry is NULL", &handle->error);
  }
  return guarded(&handle->error, [&] {
    handle->artifact = artifact->artifact;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::create(*handle->artifact, entry);
    if (!session.ok()) {
      return report(session.status(), &handle->error);
    }
    handle->session = std::move(*session);
    return SYNTH_OK;
  });
}

const char *synth_session_error(const synth_session *session) {
  return session ? session->error.c_str() : "no session";
}

int synth_session_num_inputs(const synth_session *session) {
  return session && session->session
             ? static_cast<int>(session->session->entry().inputs.size())
             : 0;
}

synth_status synth_session_input_info(const synth_session *session, int index,
                                      const char **name, synth_dtype *dtype,
                                      int *rank, const int64_t **shape) {
  return bindingInfo(session, /*inputs=*/true, index, name, dtype, rank, shape);
}

int synth_session_num_outputs(const synth_session *session) {
  return session && session->session
             ? static_cast<int>(session->session->entry().outputs.size())
             : 0;
}

synth_status synth_session_output_info(const synth_session *session, int index,
                                       const char **name, synth_dtype *dtype,
                                       int *rank, const int64_t **shape) {
  return bindingInfo(session, /*inputs=*/false, index, name, dtype, rank,
                     shape);
}

synth_status synth_session_set_input(synth_session *session, const char *name,
                                     synth_dtype dtype, const int64_t *shape,
                                     int rank, const void *data, size_t bytes) {
  if (!session || !session->session) {
    return invalid("synth_session_set_input: no session",
                   session ? &session->error : nullptr);
  }
  DType type;
  if (!name || !toDType(dtype, type) || rank < 0 || (rank > 0 && !shape)) {
    return invalid("synth_session_set_input: NULL name, unknown dtype, or "
                   "negative rank / NULL shape",
                   &session->error);
  }
  return guarded(&session->error, [&] {
    std::vector<int64_t> dims(shape, shape + rank);
    return report(session->session->setInput(name, type, dims, data, bytes),
                  &session->error);
  });
}

synth_status synth_session_run(synth_session *session) {
  if (!session || !session->session) {
    return invalid("synth_session_run: no session",
                   session ? &session->error : nullptr);
  }
  return guarded(&session->error, [&] {
    return report(session->session->run(), &session->error);
  });
}

synth_status synth_session_get_output(synth_session *session, const char *name,
                                      synth_dtype *dtype, int *rank,
                                      const int64_t **shape, const void **data,
                                      size_t *bytes) {
  if (!session || !session->session || !name) {
    return invalid("synth_session_get_output: no session or NULL name",
                   session ? &session->error : nullptr);
  }
  return guarded(&session->error, [&] {
    absl::StatusOr<synth::rt::TensorView> view =
        session->session->outputView(name);
    if (!view.ok()) {
      return report(view.status(), &session->error);
    }
    if (dtype) {
      *dtype = fromDType(view->dtype);
    }
    if (rank) {
      *rank = static_cast<int>(view->shape->size());
    }
    if (shape) {
      *shape = view->shape->data();
    }
    if (data) {
      *data = view->data;
    }
    if (bytes) {
      *bytes = view->bytes;
    }
    return SYNTH_OK;
  });
}

void synth_session_free(synth_session *session) { delete session; }

} // extern "C"
