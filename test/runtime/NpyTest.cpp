//===- NpyTest.cpp - .npy reader and writer -------------------------------===//

#include "runtime/Npy.h"

#include "gtest/gtest.h"

#include <cstring>

namespace {

using synth::DType;
using synth::Tensor;
namespace npy = synth::npy;

/// A .npy 1.0 file with `header` (unpadded) and `data`, as numpy lays it out.
std::string npyFile(const std::string &header, const std::string &data) {
  std::string padded = header;
  while ((10 + padded.size() + 1) % 64 != 0) {
    padded += ' ';
  }
  padded += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(padded.size() & 0xFF);
  out += static_cast<char>(padded.size() >> 8);
  return out + padded + data;
}

TEST(Npy, RoundTripEveryDType) {
  for (DType dtype : {DType::F32, DType::I32, DType::U8, DType::F64, DType::I64,
                      DType::Bool}) {
    for (const std::vector<int64_t> &shape :
         {std::vector<int64_t>{}, {5}, {2, 3}, {2, 0, 4}}) {
      Tensor t = Tensor::zeros(dtype, shape);
      for (size_t i = 0; i < t.bytes.size(); ++i) {
        t.bytes[i] = dtype == DType::Bool ? i % 2 : static_cast<uint8_t>(i);
      }
      absl::StatusOr<std::string> bytes = npy::serialize(t);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      // The data starts 64-byte aligned, as numpy writes it.
      EXPECT_EQ((bytes->size() - t.bytes.size()) % 64, 0u);
      absl::StatusOr<Tensor> back = npy::parse(*bytes, "t.npy");
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->dtype, dtype);
      EXPECT_EQ(back->shape, shape);
      EXPECT_EQ(back->bytes, t.bytes);
    }
  }
}

TEST(Npy, HeaderIsWhatNumpyWrites) {
  // numpy.save(f, numpy.zeros(3, numpy.float32)) writes exactly this header:
  // 128 bytes in all (the dict, spaces, a newline), then the data.
  Tensor t = Tensor::zeros(DType::F32, {3});
  absl::StatusOr<std::string> bytes = npy::serialize(t);
  ASSERT_TRUE(bytes.ok());
  ASSERT_EQ(bytes->size(), 128u + 12u);
  EXPECT_EQ(bytes->substr(0, 10), std::string("\x93NUMPY\x01\x00\x76\x00", 10));
  const std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  EXPECT_EQ(bytes->substr(10, 118),
            dict + std::string(118 - 1 - dict.size(), ' ') + "\n");
}

TEST(Npy, ReadsOtherWritersLayouts) {
  // Keys in another order, no trailing comma, Python 2 longs, version 2.0.
  std::string data(24, '\0');
  absl::StatusOr<Tensor> t = npy::parse(
      npyFile("{'shape': (2L, 3L), 'fortran_order': False, 'descr': '<i4'}",
              data),
      "t.npy");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype, DType::I32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));

  std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': "
                       "(4,), }";
  std::string v2("\x93NUMPY\x02\x00", 8);
  uint32_t length = header.size();
  v2.append(reinterpret_cast<const char *>(&length), 4);
  absl::StatusOr<Tensor> u8 = npy::parse(v2 + header + "abcd", "v2.npy");
  ASSERT_TRUE(u8.ok()) << u8.status();
  EXPECT_EQ(u8->dtype, DType::U8);
  EXPECT_EQ(u8->numel(), 4);
}

TEST(Npy, RejectsBadFiles) {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (2,), }";
  struct Case {
    std::string bytes, error;
  };
  for (const Case &c : std::vector<Case>{
           {"PK\x03\x04 not npy",
            "x.npy: not a .npy file (no \\x93NUMPY magic)"},
           {npyFile(ok, std::string(7, '\0')),
            "x.npy: data holds 7 bytes, but <f4 [2] needs 8"},
           {npyFile(ok, std::string(9, '\0')),
            "x.npy: data holds 9 bytes, but <f4 [2] needs 8"},
           {npyFile("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                    std::string(8, '\0')),
            "x.npy: unsupported dtype '>f4' (supported: <f8, <f4, <i8, <i4, "
            "|u1, |b1; big-endian data is not)"},
           {npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
                    std::string(8, '\0')),
            "x.npy: Fortran-order arrays are not supported (save with "
            "numpy.ascontiguousarray)"},
           {npyFile("{'descr': '<f4', 'shape': (2,), }", std::string(8, '\0')),
            "x.npy: the header needs 'descr', 'fortran_order' and 'shape'"},
           {npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
                    "'extra': 1}",
                    std::string(8, '\0')),
            "x.npy: unknown header key 'extra'"},
           {npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
                    ""),
            "x.npy: 'shape' must appear once, as a tuple of non-negative "
            "integers"},
           {std::string("\x93NUMPY\x01\x00\xff\x7f{", 11),
            "x.npy: truncated: header length 32767 exceeds the file"},
           {std::string("\x93NUMPY\x04\x00", 8),
            "x.npy: unsupported .npy version 4.0 (this reader knows 1.0, 2.0, "
            "3.0)"},
       }) {
    absl::StatusOr<Tensor> t = npy::parse(c.bytes, "x.npy");
    ASSERT_FALSE(t.ok()) << c.error;
    EXPECT_EQ(t.status().message(), c.error);
  }
}

} // namespace
