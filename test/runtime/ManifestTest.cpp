//===- ManifestTest.cpp - manifest.json reader, validator and writer ------===//
//
// Starts from the toy artifact's manifest (written by serializeManifest) and
// edits one thing at a time, checking that each edit is rejected with the
// exact message, line:column and JSON path.
//
//===----------------------------------------------------------------------===//

#include "runtime/Manifest.h"

#include "TestUtil.h"

#include "gtest/gtest.h"

namespace {

namespace rt = synth::rt;
using synth::DType;
using synth::test::kToyArtifact;
using synth::test::positionOf;
using synth::test::readText;
using synth::test::replaceOnce;

std::string toyManifest() { return readText(kToyArtifact + "/manifest.json"); }

std::string parseError(const std::string &text) {
  absl::StatusOr<rt::Manifest> m = rt::parseManifest(text, "m.json");
  EXPECT_FALSE(m.ok());
  return m.ok() ? "(parsed)" : std::string(m.status().message());
}

TEST(Manifest, ToyParsesAndRoundTrips) {
  std::string text = toyManifest();
  absl::StatusOr<rt::Manifest> m = rt::parseManifest(text, "m.json");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->version, 1);
  EXPECT_EQ(m->target.requiredFeatures, std::vector<std::string>{"sse41"});
  ASSERT_EQ(m->entries.size(), 3u);
  const rt::EntryInfo *forward = m->findEntry("forward");
  ASSERT_NE(forward, nullptr);
  EXPECT_EQ(forward->buffers.size(), 6u);
  EXPECT_EQ(forward->buffers[3].storage, rt::Storage::Arena);
  EXPECT_EQ(forward->buffers[1].param, "embed.weight");
  EXPECT_EQ(forward->calls[1].kernel, "toy_k1_logits");
  EXPECT_EQ(m->findEntry("loss")->buffers[7].shape.size(), 0u);
  EXPECT_EQ(m->model.find("task")->asString(), "lm");
  // The writer is a fixed point of parse.
  EXPECT_EQ(rt::serializeManifest(*m), text);
}

TEST(Manifest, WriterMatchesTheDocumentLayout) {
  std::string text = toyManifest();
  EXPECT_NE(
      text.find(R"({"shape": [2, 8], "dtype": "I32", "storage": "input"})"),
      std::string::npos);
  EXPECT_NE(text.find(R"("storage": "param", "name": "embed.weight"})"),
            std::string::npos);
  EXPECT_NE(text.find(R"("storage": "arena", "offset": 128})"),
            std::string::npos);
}

struct EditCase {
  const char *from;
  const char *to;
  /// Where the error points: the first occurrence of `at` in the edited
  /// text, plus `skip` characters.
  const char *at;
  size_t skip;
  const char *error; ///< after "m.json:L:C: "
};

TEST(Manifest, EditsAreRejectedWithPositionAndPath) {
  const std::string base = toyManifest();
  const EditCase cases[] = {
      {R"("version": 1)", R"("version": 2)", R"("version": 2)", 11,
       "version: unsupported artifact version 2 (this runtime reads 1)"},
      {R"("version": 1)", R"("version": "1")", R"("version": "1")", 11,
       "version: expected an integer, got string \"1\""},
      {R"("format": "synthc-artifact")", R"("format": "onnx")", "\"onnx\"", 0,
       "format: expected \"synthc-artifact\", got string \"onnx\" (not a "
       "synthc artifact manifest)"},
      {R"("buffers": [3, 4, 5])", R"("buffers": [3, 42, 5])",
       R"("buffers": [3, 42, 5])", 15,
       "entries.forward.calls[1].buffers[1]: buffer index 42 out of range "
       "(plan has 6 buffers)"},
      {R"("buffers": [3, 4, 5])", R"("buffers": [3, -4, 5])",
       R"("buffers": [3, -4, 5])", 15,
       "entries.forward.calls[1].buffers[1]: expected a non-negative integer, "
       "got number -4"},
      {R"("offset": 128)", R"("offset": 100)", R"("offset": 100})", 10,
       "entries.pool.buffers[4].offset: arena offset 100 is not a multiple of "
       "64"},
      {R"("arena_bytes": 1024)", R"("arena_bytes": 1000)",
       R"("storage": "arena", "offset": 0)", 30,
       "entries.forward.buffers[3].offset: bytes [0, 1024) of F32 [2, 8, 16] "
       "lie outside the arena of 1000 bytes"},
      {R"("storage": "arena")", R"("storage": "heap")", R"("heap")", 0,
       "entries.forward.buffers[3].storage: unknown storage \"heap\" (expected "
       "input, param, output, arena, derived or state)"},
      // Training: state buffers and in-place updates.
      {R"("arena_bytes": 1024,)", R"("arena_bytes": 1024, "updates": [3],)",
       R"("updates": [3])", 12,
       "entries.forward.updates[0]: buffer 3 is arena; only param and state "
       "buffers are updated in place"},
      {R"("arena_bytes": 1024,)", R"("arena_bytes": 1024, "updates": [1, 1],)",
       R"("updates": [1, 1])", 15,
       "entries.forward.updates[1]: buffer 1 is listed twice"},
      {R"("arena_bytes": 1024,)", R"("arena_bytes": 1024, "updates": [9],)",
       R"("updates": [9])", 12,
       "entries.forward.updates[0]: buffer index 9 out of range (plan has 6 "
       "buffers)"},
      {R"("dtype": "I32", "storage": "input"})",
       R"("dtype": "I32", "storage": "state", "name": "s"})",
       R"("I32", "storage": "state")", 0,
       "entries.forward.buffers[0].dtype: state buffers are F32, got I32"},
      {R"("storage": "arena", "offset": 0})", R"("storage": "state"})",
       R"({"shape": [2, 8, 16], "dtype": "F32", "storage": "state"})", 0,
       "entries.forward.buffers[3]: missing key \"name\" (a state buffer "
       "names its state)"},
      {R"("shape": [2, 8], "dtype": "I32")",
       R"("shape": [2, 8], "dtype": "F16")", R"("F16")", 0,
       "entries.forward.buffers[0].dtype: unsupported dtype \"F16\" (an "
       "artifact uses F32, I32 or U8)"},
      {R"("shape": [2, 8], "dtype": "I32")",
       R"("shape": [2, 0], "dtype": "I32")", R"("shape": [2, 0])", 13,
       "entries.forward.buffers[0].shape[1]: expected a positive dimension, "
       "got "
       "number 0"},
      {R"("storage": "param", "name": "norm.weight")",
       R"("storage": "param", "name": "nrm.weight")", R"("nrm.weight")", 0,
       "entries.forward.buffers[2].name: unknown parameter \"nrm.weight\" (not "
       "in parameters)"},
      {R"({"shape": [16], "dtype": "F32", "storage": "param")",
       R"({"shape": [8], "dtype": "F32", "storage": "param")",
       R"({"shape": [8], "dtype": "F32", "storage": "param")", 0,
       "entries.forward.buffers[2]: buffer is F32 [8] but parameter "
       "\"norm.weight\" is F32 [16]"},
      {R"({"shape": [2, 8], "dtype": "I32", "storage": "input"})",
       R"({"shape": [2, 8], "dtype": "I32", "storage": "input", "offset": 0})",
       R"("offset": 0})", 10,
       "entries.forward.buffers[0].offset: only arena buffers have an offset; "
       "this one is input"},
      {R"({"name": "tokens", "buffer": 0})",
       R"({"name": "tokens", "buffer": 3})", R"("buffer": 3})", 10,
       "entries.forward.inputs[0].buffer: buffer 3 has storage arena, not "
       "input"},
      {R"("format": "synthc-artifact",)",
       R"("format": "synthc-artifact", "extra": 1,)", R"("extra": 1)", 9,
       "extra: unknown key \"extra\" (expected one of: format, version, model, "
       "target, files, parameters, entries, cuda, schedule)"},
      {R"("arena_bytes": 1024,)", "", R"("forward": {)", 11,
       "entries.forward: missing key \"arena_bytes\""},
      {R"("kernels.so": {)", R"("../kernels.so": {)", R"({"sha256")", 0,
       "files[\"../kernels.so\"]: \"../kernels.so\" is not a plain file name "
       "inside the artifact"},
      {R"("kernel": "toy_k1_logits")", R"("kernel": "toy k1")", R"("toy k1")",
       0,
       "entries.forward.calls[1].kernel: kernel name \"toy k1\" is not a C "
       "identifier"},
      {R"("trainable": true)", R"("trainable": 1)", R"("trainable": 1)", 13,
       "parameters[0].trainable: expected true or false, got number 1"},
      {R"("required_features": ["sse41"])", R"("required_features": "sse41")",
       R"("sse41")", 0,
       "target.required_features: expected an array, got string \"sse41\""},
      {R"("kind": "cpu")", R"("kind": "tpu")", R"("tpu")", 0,
       "target.kind: unknown target kind \"tpu\" (expected cpu or cuda)"},
      {R"("flops": 512)", R"("flops": 5.5)", "5.5", 0,
       "entries.forward.calls[0].flops: expected a non-negative integer, got "
       "number 5.5"},
  };
  for (const EditCase &c : cases) {
    std::string text = replaceOnce(base, c.from, c.to);
    std::string expected =
        "m.json:" + positionOf(text, c.at, c.skip) + ": " + c.error;
    EXPECT_EQ(parseError(text), expected) << "edit: " << c.to;
  }
}

TEST(Manifest, BindingsCoverEveryInputAndOutputOnce) {
  const std::string base = toyManifest();
  // pool binds tokens (0) and mask (1); binding mask to 0 too leaves 1 unbound.
  std::string twice = replaceOnce(base, R"({"name": "mask", "buffer": 1})",
                                  R"({"name": "mask", "buffer": 0})");
  EXPECT_EQ(
      parseError(twice),
      "m.json:" + positionOf(twice, R"({"name": "mask", "buffer": 0})", 27) +
          ": entries.pool.inputs[1].buffer: buffer 0 is already bound "
          "by inputs[0]");
  std::string duplicate = replaceOnce(base, R"({"name": "mask", "buffer": 1})",
                                      R"({"name": "tokens", "buffer": 1})");
  EXPECT_NE(parseError(duplicate).find(
                "entries.pool.inputs[1].name: duplicate name \"tokens\""),
            std::string::npos);
}

TEST(Manifest, BadChecksumSpelling) {
  std::string text = replaceOnce(toyManifest(), R"("kernels.so": {"sha256": ")",
                                 R"("kernels.so": {"sha256": "X)");
  std::string error = parseError(text);
  EXPECT_EQ(error.rfind("m.json:" + positionOf(text, R"("X)") +
                            ": files[\"kernels.so\"].sha256: expected 64 "
                            "lowercase hex digits, got \"X",
                        0),
            0u)
      << error;
}

TEST(Manifest, TruncatedOrNotJson) {
  const std::string base = toyManifest();
  std::string truncated = base.substr(0, base.size() / 2);
  std::string error = parseError(truncated);
  EXPECT_EQ(error.rfind("m.json:", 0), 0u) << error;
  EXPECT_EQ(parseError("[1, 2]"),
            "m.json:1:1: a manifest is a JSON object, got array");
  EXPECT_EQ(parseError("{}"),
            "m.json:1:1: missing key \"format\" (not a synthc artifact "
            "manifest)");
  EXPECT_EQ(parseError(
                R"({"format": "synthc-artifact", "version": 1, "version": 2})"),
            "m.json:1:45: duplicate key \"version\"");
}

/// A valid manifest built in code, for validateManifest.
rt::Manifest smallManifest() {
  absl::StatusOr<rt::Manifest> m = rt::parseManifest(toyManifest(), "m.json");
  EXPECT_TRUE(m.ok());
  return *m;
}

TEST(Manifest, ValidateCatchesWhatTheWriterWouldEmit) {
  rt::Manifest m = smallManifest();
  EXPECT_TRUE(rt::validateManifest(m).ok());

  rt::Manifest unwritten = m;
  // forward's logits (buffer 5) no longer passed to the last call.
  unwritten.entries[0].calls[1].buffers = {3, 4, 3};
  EXPECT_EQ(rt::validateManifest(unwritten).message(),
            "<manifest>: entries.forward.outputs[0]: output \"logits\" "
            "(buffer 5) is never passed to a kernel");

  rt::Manifest tooMany = m;
  tooMany.entries[0].calls[0].buffers.assign(33, 0);
  EXPECT_EQ(rt::validateManifest(tooMany, "x").message(),
            "x: entries.forward.calls[0].buffers: 33 arguments; this runtime "
            "passes at most 32");

  rt::Manifest noKernels = m;
  noKernels.files.erase(noKernels.files.begin());
  EXPECT_EQ(rt::validateManifest(noKernels, "x").message(),
            "x: files: missing \"kernels.so\" (the kernels of a cpu artifact)");

  rt::Manifest duplicate = m;
  duplicate.entries.push_back(duplicate.entries[0]);
  EXPECT_EQ(rt::validateManifest(duplicate, "x").message(),
            "x: entries.forward: duplicate entry point \"forward\"");

  rt::Manifest noEntries = m;
  noEntries.entries.clear();
  EXPECT_EQ(rt::validateManifest(noEntries, "x").message(),
            "x: entries: an artifact needs at least one entry point");

  rt::Manifest huge = m;
  huge.entries[0].buffers[5].shape = {1 << 20, 1 << 20, 4};
  EXPECT_EQ(rt::validateManifest(huge, "x").message(),
            "x: entries.forward.buffers[5].shape: shape [1048576, 1048576, 4] "
            "has more than 2^40 elements");

  rt::Manifest unbound = m;
  unbound.entries[0].inputs.clear();
  EXPECT_EQ(rt::validateManifest(unbound, "x").message(),
            "x: entries.forward.buffers[0].storage: an input buffer must be "
            "named in inputs, and buffer 0 is not");
}

TEST(Manifest, ReadManifestNamesMissingFile) {
  absl::StatusOr<rt::Manifest> m = rt::readManifest("/nonexistent/m.json");
  EXPECT_EQ(m.status().message(),
            "/nonexistent/m.json: cannot open: No such file or directory");
}

} // namespace
