//===- TestUtil.h - helpers shared by the runtime tests -------------------===//
//
// Scratch directories, copies of the toy artifact (built by
// synth-make-test-artifact) that a test may corrupt, text edits with a check
// that the edited text was there, and re-hashing after a file is changed.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_TEST_RUNTIME_TESTUTIL_H
#define SYNTHC_TEST_RUNTIME_TESTUTIL_H

#include "runtime/FileUtil.h"
#include "runtime/Manifest.h"
#include "runtime/Sha256.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace synth::test {

inline const std::string kToyArtifact = SYNTH_TOY_ARTIFACT;

inline std::string readText(const std::string &path) {
  absl::StatusOr<std::string> bytes = readFileBytes(path);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::string();
}

inline void writeText(const std::string &path, const std::string &text) {
  absl::Status status = writeFileAtomic(path, text);
  ASSERT_TRUE(status.ok()) << status;
}

/// A fresh directory under $TMPDIR (or /tmp), removed at destruction.
class ScratchDir {
public:
  ScratchDir() {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp && *tmp ? tmp : "/tmp") + "/synthrt-test-XXXXXX";
    char *made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::string command = "rm -rf '" + path_ + "'";
    [[maybe_unused]] int ignored = std::system(command.c_str());
  }
  const std::string &path() const { return path_; }

private:
  std::string path_;
};

/// Copies the toy artifact into `dir`/`name` and returns the copy's path.
inline std::string copyToyArtifact(const std::string &dir,
                                   const std::string &name = "toy.synth") {
  std::string target = dir + "/" + name;
  EXPECT_EQ(::mkdir(target.c_str(), 0755), 0);
  for (const char *file :
       {"manifest.json", "kernels.so", "weights.safetensors"}) {
    writeText(target + "/" + file, readText(kToyArtifact + "/" + file));
  }
  return target;
}

/// `text` with the first occurrence of `from` replaced by `to`; fails the
/// test when `from` is absent.
inline std::string replaceOnce(const std::string &text, const std::string &from,
                               const std::string &to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "not found: " << from;
  if (at == std::string::npos) {
    return text;
  }
  return text.substr(0, at) + to + text.substr(at + from.size());
}

/// "line:column" (1-based) of the first occurrence of `needle` in `text`,
/// offset by `skip` characters into the match.
inline std::string positionOf(const std::string &text,
                              const std::string &needle, size_t skip = 0) {
  size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << "not found: " << needle;
  at += skip;
  int line = 1, column = 1;
  for (size_t i = 0; i < at && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return std::to_string(line) + ":" + std::to_string(column);
}

/// Rewrites the manifest of `dir` with the current sizes and SHA-256 of the
/// files it lists (after a test changed one on purpose).
inline void rehash(const std::string &dir) {
  absl::StatusOr<rt::Manifest> manifest =
      rt::readManifest(dir + "/manifest.json");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  for (rt::FileInfo &file : manifest->files) {
    std::string bytes = readText(dir + "/" + file.name);
    file.sha256 = sha256Hex(bytes);
    file.bytes = static_cast<int64_t>(bytes.size());
  }
  writeText(dir + "/manifest.json", rt::serializeManifest(*manifest));
}

} // namespace synth::test

#endif // SYNTHC_TEST_RUNTIME_TESTUTIL_H
