//===- FileUtil.cpp - whole-file reads and atomic writes ------------------===//

#include "runtime/FileUtil.h"

#include "absl/strings/str_cat.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace synth {

absl::StatusOr<std::string> readFileBytes(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  std::string bytes;
  bytes.reserve(static_cast<size_t>(info.st_size));
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      return absl::DataLossError(absl::StrCat(path, ": read error: ", why));
    }
    if (n == 0) {
      break;
    }
    bytes.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return bytes;
}

absl::Status writeFileAtomic(const std::string &path,
                             const std::string &bytes) {
  std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(temp, ": cannot create: ", std::strerror(errno)));
  }
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      return absl::DataLossError(absl::StrCat(temp, ": write failed: ", why));
    }
    written += static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  std::string why = synced ? "" : std::strerror(errno);
  if (::close(fd) != 0 && synced) {
    synced = false;
    why = std::strerror(errno);
  }
  if (!synced) {
    ::unlink(temp.c_str());
    return absl::DataLossError(absl::StrCat(temp, ": fsync failed: ", why));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(temp.c_str());
    return absl::DataLossError(
        absl::StrCat("cannot rename ", temp, " to ", path, ": ", why));
  }
  return absl::OkStatus();
}

} // namespace synth
