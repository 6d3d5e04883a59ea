//===- Sha256Test.cpp - SHA-256 against the FIPS 180-4 test vectors -------===//

#include "runtime/Sha256.h"

#include "TestUtil.h"

#include "gtest/gtest.h"

namespace {

using synth::sha256Hex;

TEST(Sha256, StandardVectors) {
  EXPECT_EQ(sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // The 448-bit message: padding spills into a second block.
  EXPECT_EQ(
      sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(
      sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) {
    data += static_cast<char>(i * 31 + 7);
  }
  // Chunk sizes that straddle block boundaries in every way.
  for (size_t chunk : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 127u, 999u}) {
    synth::Sha256 hash;
    for (size_t at = 0; at < data.size(); at += chunk) {
      hash.update(data.data() + at, std::min(chunk, data.size() - at));
    }
    EXPECT_EQ(hash.hexDigest(), sha256Hex(data)) << "chunk " << chunk;
  }
  // Lengths around the padding boundary (55, 56, 64 bytes).
  EXPECT_EQ(sha256Hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256Hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha256Hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Sha256, File) {
  synth::test::ScratchDir dir;
  std::string path = dir.path() + "/data";
  synth::test::writeText(path, "abc");
  absl::StatusOr<std::string> digest = synth::sha256File(path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, sha256Hex("abc"));
  absl::StatusOr<std::string> missing = synth::sha256File(path + ".missing");
  EXPECT_EQ(missing.status().message(),
            path + ".missing: cannot open: No such file or directory");
}

} // namespace
