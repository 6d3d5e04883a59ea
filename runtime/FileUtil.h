//===- FileUtil.h - whole-file reads and atomic writes --------------------===//
//
// The two file operations the runtime's readers and writers share: read a
// whole file with an error naming it, and write one atomically (temporary
// file in the same folder, fsync, rename).
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_FILEUTIL_H
#define SYNTHC_RUNTIME_FILEUTIL_H

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <string>

namespace synth {

/// The bytes of the file at `path`; NotFound when it cannot be opened.
absl::StatusOr<std::string> readFileBytes(const std::string &path);

/// Writes `bytes` to `path` so that a crash never leaves a partial file.
absl::Status writeFileAtomic(const std::string &path, const std::string &bytes);

} // namespace synth

#endif // SYNTHC_RUNTIME_FILEUTIL_H
