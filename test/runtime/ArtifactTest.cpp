//===- ArtifactTest.cpp - loading and validating artifact directories -----===//
//
// Each test copies the toy artifact, breaks one thing, and checks the exact
// message Artifact::load gives.
//
//===----------------------------------------------------------------------===//

#include "runtime/Artifact.h"

#include "runtime/CpuFeatures.h"

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cstdio>

namespace {

namespace rt = synth::rt;
using synth::DType;
using synth::Tensor;
using synth::test::copyToyArtifact;
using synth::test::positionOf;
using synth::test::readText;
using synth::test::rehash;
using synth::test::replaceOnce;
using synth::test::ScratchDir;
using synth::test::writeText;

std::string loadError(const std::string &dir) {
  absl::StatusOr<std::unique_ptr<rt::Artifact>> artifact =
      rt::Artifact::load(dir);
  EXPECT_FALSE(artifact.ok());
  return artifact.ok() ? "(loaded)" : std::string(artifact.status().message());
}

void editManifest(const std::string &dir, const std::string &from,
                  const std::string &to) {
  std::string path = dir + "/manifest.json";
  writeText(path, replaceOnce(readText(path), from, to));
}

TEST(Artifact, LoadsTheToyArtifact) {
  absl::StatusOr<std::unique_ptr<rt::Artifact>> artifact =
      rt::Artifact::load(synth::test::kToyArtifact);
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  const rt::Artifact &a = **artifact;
  EXPECT_EQ(a.manifest().entries.size(), 3u);
  EXPECT_NE(a.entry("forward"), nullptr);
  EXPECT_EQ(a.entry("train_step"), nullptr);
  for (const char *kernel : {"toy_k0_embed_scale", "toy_k1_logits",
                             "toy_k2_masked_mean", "toy_k3_xent"}) {
    EXPECT_NE(a.kernel(kernel), nullptr) << kernel;
  }
  EXPECT_EQ(a.kernel("halide_malloc"), nullptr); // only kernels of calls
  ASSERT_EQ(a.weights()->tensors.size(), 3u);
  EXPECT_EQ(a.weights()->find("norm.weight")->shape, std::vector<int64_t>{16});
}

TEST(Artifact, TwoCopiesLoadSideBySide) {
  ScratchDir scratch;
  std::string first = copyToyArtifact(scratch.path(), "a.synth");
  std::string second = copyToyArtifact(scratch.path(), "b.synth");
  auto a = rt::Artifact::load(first);
  auto b = rt::Artifact::load(second);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  // Separate libraries: separate kernel addresses.
  EXPECT_NE((*a)->kernel("toy_k1_logits"), (*b)->kernel("toy_k1_logits"));
}

TEST(Artifact, ChecksumMismatch) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  std::string path = dir + "/weights.safetensors";
  std::string bytes = readText(path);
  std::string expected = synth::sha256Hex(bytes);
  bytes[bytes.size() - 1] ^= 0x40; // same size, different content
  writeText(path, bytes);
  EXPECT_EQ(loadError(dir), dir +
                                ": checksum mismatch for "
                                "weights.safetensors: manifest says " +
                                expected + ", file has " +
                                synth::sha256Hex(bytes));
}

TEST(Artifact, SizeMismatch) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  std::string path = dir + "/kernels.so";
  std::string bytes = readText(path);
  writeText(path, bytes + "x");
  EXPECT_EQ(loadError(dir), dir +
                                ": size mismatch for kernels.so: manifest "
                                "says " +
                                std::to_string(bytes.size()) +
                                " bytes, file has " +
                                std::to_string(bytes.size() + 1));
}

TEST(Artifact, MissingFileAndDirectory) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  ASSERT_EQ(::unlink((dir + "/weights.safetensors").c_str()), 0);
  EXPECT_EQ(loadError(dir),
            dir +
                ": missing file weights.safetensors listed in manifest.json (" +
                dir + "/weights.safetensors: No such file or directory)");
  ASSERT_EQ(::unlink((dir + "/manifest.json").c_str()), 0);
  EXPECT_EQ(loadError(dir), dir + "/manifest.json: cannot open: No such file "
                                  "or directory");
  EXPECT_EQ(loadError(scratch.path() + "/nowhere.synth"),
            scratch.path() + "/nowhere.synth: cannot open the artifact "
                             "directory: No such file or directory");
  EXPECT_EQ(loadError(synth::test::kToyArtifact + "/kernels.so"),
            synth::test::kToyArtifact +
                "/kernels.so: not a directory (an artifact is a directory "
                "holding manifest.json, kernels.so and weights.safetensors)");
}

TEST(Artifact, TruncatedManifest) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  std::string text = readText(dir + "/manifest.json");
  writeText(dir + "/manifest.json", text.substr(0, 700));
  std::string error = loadError(dir);
  EXPECT_EQ(error.rfind(dir + "/manifest.json:", 0), 0u) << error;
  EXPECT_NE(error.find("end of input"), std::string::npos) << error;
}

TEST(Artifact, EditedManifestField) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  editManifest(dir, R"("buffers": [3, 4, 5])", R"("buffers": [3, 4, 17])");
  std::string text = readText(dir + "/manifest.json");
  EXPECT_EQ(loadError(dir),
            dir + "/manifest.json:" +
                positionOf(text, R"("buffers": [3, 4, 17])", 18) +
                ": entries.forward.calls[1].buffers[2]: buffer index 17 out "
                "of range (plan has 6 buffers)");
}

TEST(Artifact, UnsupportedVersion) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  editManifest(dir, R"("version": 1)", R"("version": 2)");
  EXPECT_EQ(loadError(dir), dir + "/manifest.json:3:14: version: unsupported "
                                  "artifact version 2 (this runtime reads 1)");
}

TEST(Artifact, MissingKernelSymbol) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  std::string path = dir + "/manifest.json";
  std::string text = readText(path);
  // Rename the kernel in every call (forward and loss use it).
  for (size_t at; (at = text.find("toy_k1_logits")) != std::string::npos;) {
    text.replace(at, 13, "toy_k1_logitz");
  }
  writeText(path, text);
  EXPECT_EQ(loadError(dir), dir + ": kernel toy_k1_logitz not found in "
                                  "kernels.so (entries.forward.calls[1])");
}

TEST(Artifact, WrongParameterShapeInWeights) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  std::string path = dir + "/weights.safetensors";
  absl::StatusOr<synth::safetensors::File> weights =
      synth::safetensors::read(path);
  ASSERT_TRUE(weights.ok());
  synth::safetensors::File edited = *weights;
  *edited.find("norm.weight") = Tensor::zeros(DType::F32, {8});
  ASSERT_TRUE(synth::safetensors::write(path, edited).ok());
  rehash(dir); // so the checksum passes and the shape check is reached
  EXPECT_EQ(loadError(dir), path + ": parameter \"norm.weight\" has shape "
                                   "[8], expected [16]");

  edited = *weights;
  edited.tensors.pop_back();
  edited.add("extra", Tensor::zeros(DType::F32, {2}));
  ASSERT_TRUE(synth::safetensors::write(path, edited).ok());
  rehash(dir);
  EXPECT_EQ(loadError(dir), path + ": missing parameter \"lm_head.weight\" of "
                                   "shape [16, 256]");

  edited = *weights;
  edited.add("extra", Tensor::zeros(DType::F32, {2}));
  ASSERT_TRUE(synth::safetensors::write(path, edited).ok());
  rehash(dir);
  EXPECT_EQ(loadError(dir), path + ": unexpected tensor \"extra\" (not a "
                                   "parameter of this model)");

  edited = *weights;
  *edited.find("norm.weight") = Tensor::zeros(DType::I32, {16});
  ASSERT_TRUE(synth::safetensors::write(path, edited).ok());
  rehash(dir);
  EXPECT_EQ(loadError(dir), path + ": parameter \"norm.weight\" has dtype I32, "
                                   "expected F32");
}

TEST(Artifact, CpuFeatureNotPresent) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  editManifest(dir, R"("required_features": ["sse41"])",
               R"("required_features": ["sse41", "avx512_fp99"])");
  std::string error = loadError(dir);
  EXPECT_EQ(error.rfind(dir + ": cannot run on this CPU: required feature "
                              "avx512_fp99 is unknown to this runtime (this "
                              "CPU has: ",
                        0),
            0u)
      << error;
  EXPECT_NE(error.find("; recompile with a --cpu that matches this machine"),
            std::string::npos);

  // A real feature no current CPU has: Xeon Phi's AVX-512 ER/PF.
  if (rt::hostCpuFeatures().has("avx512_knl")) {
    GTEST_SKIP() << "this is a Knights Landing";
  }
  editManifest(dir, R"("sse41", "avx512_fp99")", R"("sse41", "avx512_knl")");
  error = loadError(dir);
  EXPECT_EQ(error.rfind(dir + ": cannot run on this CPU: this CPU lacks "
                              "required feature avx512_knl (this CPU has: ",
                        0),
            0u)
      << error;
}

// What Halide 14's host target asks for on AMD Zen 4 (avx512_sapphirerapids)
// and what that code may use (AVX512-FP16), on a CPU without them: refused
// before any kernel runs. On a CPU with both, a feature it lacks stands in.
TEST(Artifact, CpuFeatureOfAnotherCpu) {
  const rt::CpuFeatures &cpu = rt::hostCpuFeatures();
  std::printf("this CPU: %s\n", cpu.brand.c_str());
  std::vector<std::string> lacking;
  for (const char *name :
       {"avx512fp16", "avx512_sapphirerapids", "avxvnni", "fma4"}) {
    if (!cpu.has(name)) {
      lacking.push_back(name);
    }
  }
  ASSERT_FALSE(lacking.empty()) << "this CPU has every feature tried";
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  std::string previous = "\"sse41\"";
  for (const std::string &feature : lacking) {
    std::string next = "\"sse41\", \"" + feature + "\"";
    editManifest(dir, previous, next);
    previous = next;
    std::string error = loadError(dir);
    EXPECT_EQ(error.rfind(dir +
                              ": cannot run on this CPU: this CPU lacks "
                              "required feature " +
                              feature + " (this CPU has: ",
                          0),
              0u)
        << error;
    std::printf("refused: %s\n", error.c_str());
  }
}

TEST(Artifact, WrongTarget) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  editManifest(dir, R"("arch": "x86-64")", R"("arch": "arm-64")");
  EXPECT_EQ(loadError(dir), dir +
                                ": the artifact is for arm-64, this machine "
                                "is " +
                                rt::hostCpuFeatures().arch);
  editManifest(dir, R"("kind": "cpu")", R"("kind": "cuda")");
  // A cuda target needs the manifest's "cuda" key (CudaTest.cpp has the
  // cuda artifact's own messages).
  EXPECT_EQ(loadError(dir).substr(0, dir.size() + 15), dir + "/manifest.json:");
  EXPECT_NE(loadError(dir).find(": missing key \"cuda\""), std::string::npos)
      << loadError(dir);
}

TEST(Artifact, KernelsSoThatIsNotALibrary) {
  ScratchDir scratch;
  std::string dir = copyToyArtifact(scratch.path());
  writeText(dir + "/kernels.so", "not an ELF file");
  rehash(dir);
  std::string error = loadError(dir);
  EXPECT_EQ(error.rfind(dir + ": cannot load kernels.so: ", 0), 0u) << error;
}

TEST(Artifact, ThreadCount) {
  auto artifact = rt::Artifact::load(synth::test::kToyArtifact);
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  ASSERT_TRUE((*artifact)->setNumThreads(3).ok());
  absl::StatusOr<int> previous = (*artifact)->setNumThreads(1);
  ASSERT_TRUE(previous.ok());
  EXPECT_EQ(*previous, 3);
  EXPECT_EQ((*artifact)->setNumThreads(-1).status().message(),
            "thread count must be >= 0 (0: one per CPU), got -1");
  ASSERT_TRUE((*artifact)->setNumThreads(0).ok());
}

} // namespace
