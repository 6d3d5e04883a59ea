//===- CudaTest.cpp - the cuda manifest key and the CUDA device -----------===//
//
// What runs without a GPU: the "cuda" key of a manifest written by synthc
// (test/runtime/cuda_manifest.json: models/lm/fixed_random.json, --target=cuda
// --gpu-arch=sm_90a --batch 1 --seq-len 4), each invalid edit rejected with
// its exact message; loading a tiny cuda artifact for the CUDA device; the
// compute capability check; and the device's no-driver paths. Launching
// kernels needs a GPU (not tested here).
//
//===----------------------------------------------------------------------===//

#include "runtime/CudaDevice.h"
#include "runtime/Manifest.h"
#include "runtime/Sha256.h"

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <dlfcn.h>
#include <sys/stat.h>

namespace {

namespace rt = synth::rt;
using synth::test::readText;
using synth::test::replaceOnce;
using synth::test::ScratchDir;
using synth::test::writeText;

std::string cudaManifest() { return readText(SYNTH_CUDA_MANIFEST); }

std::string parseError(const std::string &text) {
  absl::StatusOr<rt::Manifest> m = rt::parseManifest(text, "m.json");
  EXPECT_FALSE(m.ok());
  return m.ok() ? "(parsed)" : std::string(m.status().message());
}

TEST(CudaManifest, SynthcManifestParsesAndRoundTrips) {
  absl::StatusOr<rt::Manifest> m = rt::parseManifest(cudaManifest(), "m.json");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->target.kind, "cuda");
  ASSERT_TRUE(m->cuda.has_value());
  EXPECT_EQ(m->cuda->arch, "sm_90a");
  EXPECT_EQ(m->cuda->abi, "bare-pointers");
  EXPECT_EQ(m->cuda->skippedEntries, std::vector<std::string>{"decode"});
  const rt::CudaKernelInfo *k0 = m->cuda->findKernel("forward_k0_embedding");
  ASSERT_NE(k0, nullptr);
  EXPECT_EQ(k0->entry, "forward_k0_embedding");
  EXPECT_EQ(k0->ptx, "forward_k0_embedding.ptx");
  EXPECT_EQ(k0->cubin, "forward_k0_embedding.cubin");
  EXPECT_EQ(k0->grid, (std::array<int64_t, 3>{4, 1, 1}));
  EXPECT_EQ(k0->block, (std::array<int64_t, 3>{256, 1, 1}));
  EXPECT_EQ(k0->sharedBytes, 0);
  EXPECT_EQ(k0->anchor, "embedding");
  bool once = false;
  for (const rt::EntryInfo &entry : m->entries) {
    for (const rt::CallInfo &call : entry.calls) {
      EXPECT_NE(m->cuda->findKernel(call.kernel), nullptr) << call.kernel;
      once = once || call.once;
    }
  }
  EXPECT_TRUE(once); // fixed random attention: softmax(R) once
  absl::StatusOr<rt::Manifest> again =
      rt::parseManifest(rt::serializeManifest(*m), "again.json");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->cuda.has_value());
  EXPECT_EQ(again->cuda->kernels.size(), m->cuda->kernels.size());
  EXPECT_EQ(rt::serializeManifest(*again), rt::serializeManifest(*m));
}

TEST(CudaManifest, ValidateAcceptsCudaTargetWithoutKey) {
  // The compiler validates the common part before it adds the cuda key.
  absl::StatusOr<rt::Manifest> m = rt::parseManifest(cudaManifest(), "m.json");
  ASSERT_TRUE(m.ok()) << m.status();
  m->cuda.reset();
  EXPECT_TRUE(rt::validateManifest(*m).ok());
}

TEST(CudaManifest, InvalidEditsAreRejected) {
  const std::string text = cudaManifest();
  struct Case {
    std::string from, to, message;
  };
  const std::vector<Case> cases = {
      {R"("abi": "bare-pointers")", R"("abi": "memref-descriptors")",
       "m.json:3398:12: cuda.abi: unsupported kernel ABI "
       "\"memref-descriptors\" (this runtime passes \"bare-pointers\")"},
      {R"(    "arch": "sm_90a",
    "abi")",
       R"(    "arch": "sm_80",
    "abi")",
       "m.json:3397:13: cuda.arch: \"sm_80\" differs from target.arch "
       "\"sm_90a\""},
      {R"(        "grid": [
          4,)",
       R"(        "grid": [
          0,)",
       "m.json:3405:11: cuda.kernels.forward_k0_embedding.grid[0]: grid "
       "dimension 0 out of range [1, 2147483647]"},
      {R"(        "grid": [
          4,
          1,
          1
        ],)",
       R"(        "grid": [4, 1],)",
       "m.json:3404:17: cuda.kernels.forward_k0_embedding.grid: expected three "
       "integers [x, y, z], got array"},
      {R"(        "block": [
          256,
          1,
          1
        ],
        "shared_bytes": 0,
        "anchor": "embedding")",
       R"(        "block": [512, 4, 1],
        "shared_bytes": 0,
        "anchor": "embedding")",
       "m.json:3409:18: cuda.kernels.forward_k0_embedding.block: 2048 threads "
       "per block; at most 1024"},
      {R"(        "block": [
          256,
          1,
          1
        ],
        "shared_bytes": 0,
        "anchor": "embedding")",
       R"(        "block": [256, 1, 1],
        "shared_bytes": 49153,
        "anchor": "embedding")",
       "m.json:3410:25: cuda.kernels.forward_k0_embedding.shared_bytes: 49153 "
       "bytes of shared memory; static shared memory is at most 49152"},
      {R"("ptx": "forward_k0_embedding.ptx")", R"("ptx": "missing.ptx")",
       "m.json:3402:16: cuda.kernels.forward_k0_embedding.ptx: ptx file "
       "\"missing.ptx\" is not listed in files"},
      {R"("cubin": "forward_k0_embedding.cubin")", R"("cubin": "k.cubin")",
       "m.json:3403:18: cuda.kernels.forward_k0_embedding.cubin: cubin file "
       "\"k.cubin\" is not listed in files"},
      {R"("forward_k0_embedding": {)", R"("forward_kX_embedding": {)",
       "m.json:1819:21: entries.forward.calls[0].kernel: kernel "
       "\"forward_k0_embedding\" has no entry in cuda.kernels"},
      {R"("entry": "forward_k0_embedding")", R"("entry": "0bad")",
       "m.json:3401:18: cuda.kernels.forward_k0_embedding.entry: entry "
       "\"0bad\" is not a C identifier"},
      {R"("shared_bytes": 0,)", R"("shared_bytes": -1,)",
       "m.json:3414:25: cuda.kernels.forward_k0_embedding.shared_bytes: "
       "expected a non-negative integer, got number -1"},
      {R"("anchor": "embedding")", R"("anchor": "embedding", "x": 1)",
       "m.json:3415:37: cuda.kernels.forward_k0_embedding.x: unknown key \"x\" "
       "(expected one of: entry, ptx, grid, block, shared_bytes, cubin, "
       "anchor)"},
      {R"("cuda": {)", R"("cuda_": {)",
       "m.json:3396:12: cuda_: unknown key \"cuda_\" (expected one of: format, "
       "version, model, target, files, parameters, entries, cuda, schedule)"},
      {R"("kind": "cuda")", R"("kind": "cpu")",
       "m.json:3396:11: cuda: only a cuda target has a \"cuda\" key; this one "
       "is \"cpu\""},
  };
  for (const Case &c : cases) {
    EXPECT_EQ(parseError(replaceOnce(text, c.from, c.to)), c.message)
        << c.from << " -> " << c.to;
  }
}

TEST(CudaManifest, CudaTargetNeedsTheKey) {
  std::string text = cudaManifest();
  size_t start = text.find(",\n  \"cuda\": {");
  ASSERT_NE(start, std::string::npos);
  text = text.substr(0, start) + "\n}\n";
  EXPECT_EQ(parseError(text), "m.json:1:1: missing key \"cuda\" (a cuda "
                              "target's kernels and launch configurations)");
}

/// A cuda artifact with one entry, one call and one PTX file (not real PTX:
/// nothing here loads it into a driver).
std::string writeTinyCudaArtifact(const std::string &dir) {
  ::mkdir(dir.c_str(), 0755);
  const std::string ptx = "// not PTX\n";
  writeText(dir + "/k.ptx", ptx);
  rt::Manifest m;
  m.target.kind = "cuda";
  m.target.arch = "sm_90a";
  m.files.push_back(
      {"k.ptx", synth::sha256Hex(ptx), static_cast<int64_t>(ptx.size())});
  rt::EntryInfo entry;
  entry.name = "forward";
  entry.buffers.push_back({{4}, synth::DType::F32, rt::Storage::Input, 0, ""});
  entry.buffers.push_back({{4}, synth::DType::F32, rt::Storage::Output, 0, ""});
  entry.inputs.push_back({"x", 0});
  entry.outputs.push_back({"y", 1});
  entry.calls.push_back({"k", {0, 1}, 4, 32});
  m.entries.push_back(entry);
  rt::CudaInfo cuda;
  cuda.arch = "sm_90a";
  rt::CudaKernelInfo kernel;
  kernel.name = kernel.entry = "k";
  kernel.ptx = "k.ptx";
  kernel.grid = {1, 1, 1};
  kernel.block = {4, 1, 1};
  cuda.kernels.push_back(kernel);
  m.cuda = cuda;
  EXPECT_TRUE(rt::validateManifest(m).ok());
  writeText(dir + "/manifest.json", rt::serializeManifest(m));
  return dir;
}

TEST(CudaArtifact, LoadsForTheCudaDeviceOnly) {
  ScratchDir scratch;
  std::string dir = writeTinyCudaArtifact(scratch.path() + "/tiny.synth");
  absl::StatusOr<std::unique_ptr<rt::Artifact>> cuda =
      rt::Artifact::load(dir, rt::DeviceKind::Cuda);
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  ASSERT_NE((*cuda)->moduleImage("k.ptx"), nullptr);
  EXPECT_EQ(*(*cuda)->moduleImage("k.ptx"), "// not PTX\n");
  EXPECT_EQ((*cuda)->kernel("k"), nullptr);
  EXPECT_FALSE((*cuda)->setNumThreads(2).ok());

  absl::StatusOr<std::unique_ptr<rt::Artifact>> cpu = rt::Artifact::load(dir);
  ASSERT_FALSE(cpu.ok());
  EXPECT_EQ(cpu.status().message(),
            dir + ": the artifact's target is cuda (sm_90a); it cannot run on "
                  "the CPU (use --device=cuda)");
  absl::StatusOr<std::unique_ptr<rt::Artifact>> toy =
      rt::Artifact::load(synth::test::kToyArtifact, rt::DeviceKind::Cuda);
  ASSERT_FALSE(toy.ok());
  EXPECT_EQ(toy.status().message(),
            synth::test::kToyArtifact +
                ": the artifact's target is cpu (x86-64); it cannot run on the "
                "CUDA device (use --device=cpu)");
}

TEST(CudaDevice, ComputeCapabilityCheck) {
  EXPECT_TRUE(rt::checkCudaArch("sm_90a", 9, 0, "device 0").ok());
  EXPECT_TRUE(rt::checkCudaArch("sm_80", 8, 6, "device 0").ok());
  EXPECT_EQ(rt::checkCudaArch("sm_90a", 8, 0, "device 0").message(),
            "the artifact is for sm_90a (compute capability 9.0 exactly), but "
            "device 0 has compute capability 8.0; recompile with "
            "--gpu-arch=sm_80");
  EXPECT_EQ(rt::checkCudaArch("sm_80", 9, 0, "device 1").message(),
            "the artifact is for sm_80 (compute capability 8.0), but device 1 "
            "has compute capability 9.0; recompile with --gpu-arch=sm_90a");
  EXPECT_EQ(rt::checkCudaArch("sm_86", 8, 0, "d").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rt::checkCudaArch("gfx90a", 9, 0, "d").message(),
            "unknown CUDA architecture \"gfx90a\"");
}

TEST(CudaDevice, NoDriverLibrary) {
  absl::StatusOr<std::unique_ptr<rt::CudaDevice>> device =
      rt::CudaDevice::open(0, "libsynth-no-such-cuda-driver.so.1");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(device.status().message(),
            "no CUDA driver: libsynth-no-such-cuda-driver.so.1 not found (this "
            "machine has no NVIDIA GPU driver)");
}

TEST(CudaDevice, DefaultDriverWhenAbsent) {
  if (void *handle = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
    ::dlclose(handle);
    GTEST_SKIP() << "this machine has a CUDA driver";
  }
  ::unsetenv("SYNTH_CUDA_DRIVER");
  absl::StatusOr<std::unique_ptr<rt::CudaDevice>> device =
      rt::CudaDevice::open();
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().message(),
            "no CUDA driver: libcuda.so.1 not found (this machine has no "
            "NVIDIA GPU driver)");
}

TEST(CudaDevice, DriverFromTheEnvironment) {
  ::setenv("SYNTH_CUDA_DRIVER", "/nonexistent/libsynth-other-driver.so", 1);
  EXPECT_EQ(rt::defaultCudaDriverLibrary(),
            "/nonexistent/libsynth-other-driver.so");
  absl::StatusOr<std::unique_ptr<rt::CudaDevice>> device =
      rt::CudaDevice::open();
  ::unsetenv("SYNTH_CUDA_DRIVER");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().message(),
            "no CUDA driver: /nonexistent/libsynth-other-driver.so not found "
            "(this machine has no NVIDIA GPU driver)");
  EXPECT_EQ(rt::defaultCudaDriverLibrary(), rt::kCudaDriverLibrary);
}

TEST(CudaDevice, LibraryThatIsNotADriver) {
  absl::StatusOr<std::unique_ptr<rt::CudaDevice>> device =
      rt::CudaDevice::open(0, "libm.so.6");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(std::string(device.status().message())
                .rfind("no CUDA driver: libm.so.6 does not export cuInit, "
                       "cuDriverGetVersion, ",
                       0),
            0u)
      << device.status();
}

TEST(CudaDevice, StubDriverFailsCleanly) {
  // The toolkit's stub libcuda.so exports the API and fails cuInit.
  const std::string stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
  struct stat info;
  if (::stat(stub.c_str(), &info) != 0) {
    GTEST_SKIP() << "no " << stub;
  }
  absl::StatusOr<std::unique_ptr<rt::CudaDevice>> device =
      rt::CudaDevice::open(0, stub);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(std::string(device.status().message()),
            "no usable CUDA device: cuInit failed: CUDA error 34 (driver " +
                stub + ")")
      << device.status();
}

} // namespace
