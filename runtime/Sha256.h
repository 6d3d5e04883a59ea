//===- Sha256.h - SHA-256 (FIPS 180-4) ------------------------------------===//
//
// The artifact loader checks every file of an artifact against the SHA-256 in
// its manifest; the compiler uses the same code to write those digests.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_SHA256_H
#define SYNTHC_RUNTIME_SHA256_H

#include "absl/status/statusor.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace synth {

/// Incremental SHA-256: update() any number of times, then digest() once.
class Sha256 {
public:
  Sha256();
  void update(const void *data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  /// Finishes the hash; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();
  /// digest() as 64 lowercase hex digits.
  std::string hexDigest();

private:
  void compress(const uint8_t *block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> block_{};
  size_t blockUsed_ = 0;
  uint64_t totalBytes_ = 0;
};

/// SHA-256 of `data` as 64 lowercase hex digits.
std::string sha256Hex(std::string_view data);

/// SHA-256 of the file at `path`, read in chunks, as lowercase hex.
absl::StatusOr<std::string> sha256File(const std::string &path);

} // namespace synth

#endif // SYNTHC_RUNTIME_SHA256_H
