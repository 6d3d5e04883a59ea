//===- FormatsTest.cpp - JSON and safetensors readers and writers ---------===//
//
// Round trips, and every class of malformed input the readers must reject
// with a message naming what is wrong: truncation, lying offsets, overlaps,
// holes, bad dtypes, bad JSON.
//
//===----------------------------------------------------------------------===//

#include "runtime/Json.h"
#include "runtime/Safetensors.h"

#include "gtest/gtest.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace {

using synth::DType;
using synth::Tensor;
namespace json = synth::json;
namespace safetensors = synth::safetensors;

TEST(Json, RoundTripKeepsOrderAndValues) {
  const std::string text =
      R"({"b": [1, -2, 3.5, 1e300], "a": {"s": "x\n\"y\" \u00e9 \ud83d\ude00", "t": true, "n": null}})";
  absl::StatusOr<json::Value> value = json::parse(text, "t.json");
  ASSERT_TRUE(value.ok()) << value.status();
  ASSERT_EQ(value->members().size(), 2u);
  EXPECT_EQ(value->members()[0].first, "b");
  const json::Value &b = *value->find("b");
  EXPECT_TRUE(b.items()[1].isInteger());
  EXPECT_EQ(b.items()[1].asInt(), -2);
  EXPECT_FALSE(b.items()[2].isInteger());
  EXPECT_DOUBLE_EQ(b.items()[2].asDouble(), 3.5);
  EXPECT_EQ(value->find("a")->find("s")->asString(),
            "x\n\"y\" \xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(b.line(), 1);
  EXPECT_EQ(b.column(), 7);
  absl::StatusOr<json::Value> again =
      json::parse(json::serialize(*value, /*pretty=*/true), "again");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(json::serialize(*again), json::serialize(*value));
}

TEST(Json, ErrorsHaveLineAndColumn) {
  struct Case {
    std::string text, error;
  };
  for (const Case &c : std::vector<Case>{
           {"{\n  \"a\": [1, 2,\n}", "x:3:1: expected a JSON value, got '}'"},
           {"{\"a\": 01}", "x:1:8: expected ',' or '}' in object, got '1'"},
           {"{\"a\": tru}", "x:1:10: invalid literal (expected 'true')"},
           {"{\"a\": \"\\q\"}", "x:1:10: invalid escape '\\q' in string"},
           {"{\"a\": 1} x", "x:1:10: unexpected text after the JSON document"},
           {"{\"a\": 1e999}", "x:1:12: number out of range: 1e999"},
           {"", "x:1:1: expected a JSON value, got end of input"},
           {"\"\\ud800\"", "x:1:8: unpaired UTF-16 surrogate in \\u escape"},
           {std::string(300, '[') + std::string(300, ']'),
            "x:1:258: JSON nested deeper than 256 levels"},
       }) {
    absl::StatusOr<json::Value> value = json::parse(c.text, "x");
    ASSERT_FALSE(value.ok()) << c.text;
    EXPECT_EQ(std::string(value.status().message()), c.error) << c.text;
  }
}

/// A file with two small tensors, serialized.
std::string twoTensors() {
  safetensors::File file;
  Tensor a = Tensor::zeros(DType::F32, {2, 3});
  for (int i = 0; i < 6; ++i) {
    a.data<float>()[i] = 0.5f * i;
  }
  Tensor b = Tensor::zeros(DType::I32, {4});
  b.data<int32_t>()[3] = -7;
  file.add("a", a);
  file.add("b", b);
  file.metadata.push_back({"format", "test"});
  return safetensors::serialize(file);
}

/// Rebuilds a file from a header text and a data region.
std::string withHeader(const std::string &header, const std::string &data) {
  std::string out;
  uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) {
    out += static_cast<char>((size >> (8 * i)) & 0xFF);
  }
  return out + header + data;
}

TEST(Safetensors, RoundTrip) {
  std::string bytes = twoTensors();
  // The data region starts 8-byte aligned.
  uint64_t headerSize = 0;
  std::memcpy(&headerSize, bytes.data(), 8);
  EXPECT_EQ(headerSize % 8, 0u);
  absl::StatusOr<safetensors::File> file = safetensors::parse(bytes, "f");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->tensors.size(), 2u);
  EXPECT_EQ(file->tensors[0].first, "a");
  EXPECT_EQ(file->find("a")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_FLOAT_EQ(file->find("a")->data<float>()[5], 2.5f);
  EXPECT_EQ(file->find("b")->data<int32_t>()[3], -7);
  EXPECT_EQ(file->metadata.at(0).second, "test");
  EXPECT_EQ(safetensors::serialize(*file), bytes);
}

TEST(Safetensors, WriteIsAtomicAndReadable) {
  std::string path = ::testing::TempDir() + "/formats_test.safetensors";
  absl::StatusOr<safetensors::File> file =
      safetensors::parse(twoTensors(), "f");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(safetensors::write(path, *file).ok());
  absl::StatusOr<safetensors::File> back = safetensors::read(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(safetensors::serialize(*back), twoTensors());
  std::remove(path.c_str());
  EXPECT_EQ(safetensors::read(path).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(
      safetensors::write("/nonexistent-dir/x.safetensors", *file).ok());
}

TEST(Safetensors, RejectsMalformedFiles) {
  const std::string data(40,
                         '\0'); // a: 24 bytes F32 [2,3]; b: 16 bytes I32 [4]
  struct Case {
    const char *label;
    std::string bytes, error;
  };
  std::string good = twoTensors();
  std::vector<Case> cases = {
      {"short", "abc",
       "f: truncated: 3 bytes, fewer than the 8-byte header length"},
      {"truncated_header", good.substr(0, 20),
       "f: truncated: header length 152 exceeds the 12 bytes after the length "
       "field"},
      {"truncated_data", good.substr(0, good.size() - 4),
       "f: tensor \"b\": data_offsets [24, 40] lie outside the data region of "
       "36 bytes"},
      {"huge_header", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8),
       "f: header length 9223372036854775807 exceeds the 100 MB limit"},
      {"not_json", withHeader("{\"a\": ", data),
       "f (header):1:7: expected a JSON value, got end of input"},
      {"not_object", withHeader("[1]", data), "f: header is not a JSON object"},
      {"bad_dtype",
       withHeader(R"({"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})",
                  std::string(2, '\0')),
       "f: tensor \"a\": unsupported dtype \"F8\" (supported: F64, F32, F16, "
       "BF16, I64, I32, U8, BOOL)"},
      {"offsets_lie",
       withHeader(
           R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]},"b":{"dtype":"I32","shape":[4],"data_offsets":[20,40]}})",
           data),
       "f: tensor \"a\": data_offsets [0, 20] hold 20 bytes, but F32 [2, 3] "
       "needs 24"},
      {"overlap",
       withHeader(
           R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I32","shape":[4],"data_offsets":[16,32]}})",
           std::string(32, '\0')),
       "f: tensors \"a\" and \"b\" overlap"},
      {"hole",
       withHeader(
           R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I32","shape":[4],"data_offsets":[28,44]}})",
           std::string(44, '\0')),
       "f: bytes [24, 28) of the data region belong to no tensor"},
      {"trailing_bytes",
       withHeader(
           R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
           std::string(30, '\0')),
       "f: bytes [24, 30) of the data region belong to no tensor"},
      {"negative_dim",
       withHeader(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                  std::string(4, '\0')),
       "f: tensor \"a\": shape must hold non-negative integers"},
      {"missing_offsets",
       withHeader(R"({"a":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')),
       "f: tensor \"a\": needs dtype, shape and data_offsets"},
      {"unknown_field",
       withHeader(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})",
           std::string(4, '\0')),
       "f: tensor \"a\": unknown field \"x\""},
      {"overflowing_shape",
       withHeader(
           R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
           std::string(4, '\0')),
       "f: tensor \"a\": shape is too large"},
      {"metadata_not_string", withHeader(R"({"__metadata__":{"k":1}})", ""),
       "f: __metadata__ value of \"k\" must be a string"},
  };
  for (const Case &c : cases) {
    absl::StatusOr<safetensors::File> file = safetensors::parse(c.bytes, "f");
    ASSERT_FALSE(file.ok()) << c.label << " was accepted";
    EXPECT_EQ(std::string(file.status().message()), c.error) << c.label;
  }
}

} // namespace
