//===- HalideTargetTest.cpp - the CPU feature table against Halide 14 -----===//
//
// runtime/CpuFeatures.cpp's table says which extensions code generated for
// each Halide feature may execute. These tests hold it to what Halide 14
// really emits: they compile small pipelines for avx512_sapphirerapids and
// avx512_cannonlake to assembly and look for instructions of AVX-VNNI (the
// VEX-encoded vpdp*) and AVX512-FP16 (vmovw), and they check that synthc's
// `--cpu=host` target is one this machine's runtime check accepts.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/HalideKernels.h"
#include "runtime/CpuFeatures.h"

#include "Halide.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace {

namespace rt = synth::rt;
using namespace Halide::ConciseCasts;

const char *kSapphireRapids = "x86-64-linux-avx-avx2-avx512-avx512_cannonlake-"
                              "avx512_sapphirerapids-avx512_skylake-f16c-fma-"
                              "sse41";
const char *kCannonlake =
    "x86-64-linux-avx-avx2-avx512-avx512_cannonlake-avx512_skylake-f16c-fma-"
    "sse41";

std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string scratchPath(const std::string &name) {
  return (std::filesystem::temp_directory_path() /
          ("synth-halide-target-" + std::to_string(getpid()) + "-" + name))
      .string();
}

/// An int16 dot product, reduced in pairs (Halide's pmaddwd pattern), on
/// `lanes` outputs at a time: assembly for `target`.
std::string dotProductAssembly(const std::string &target, int lanes) {
  Halide::ImageParam p(Halide::Int(16), 2, "p"), q(Halide::Int(16), 1, "q");
  Halide::Var x("x");
  Halide::RDom k(0, 64);
  Halide::Func dot("dot");
  dot(x) = 0;
  dot(x) += i32(p(k, x)) * i32(q(k));
  Halide::RVar ko("ko"), ki("ki");
  dot.update()
      .split(k, ko, ki, 2)
      .reorder(ki, x, ko)
      .atomic()
      .vectorize(ki)
      .vectorize(x, lanes);
  dot.vectorize(x, lanes);
  std::string path = scratchPath("dot.s");
  dot.compile_to_assembly(
      path, {p, q}, "dot",
      Halide::Target(target).with_feature(Halide::Target::NoRuntime));
  std::string text = readFile(path);
  std::filesystem::remove(path);
  return text;
}

/// A gather of 16-bit lanes (as of bfloat16 or float16 data stored as
/// uint16) down a column, whose stride is known only at run time: LLVM builds
/// the vector lane by lane.
std::string gather16Assembly(const std::string &target) {
  Halide::ImageParam a(Halide::UInt(16), 2, "a");
  Halide::Var x("x");
  Halide::Func g("gather");
  g(x) = a(0, x) + a(1, x);
  g.vectorize(x, 8);
  std::string path = scratchPath("gather.s");
  g.compile_to_assembly(
      path, {a}, "gather",
      Halide::Target(target).with_feature(Halide::Target::NoRuntime));
  std::string text = readFile(path);
  std::filesystem::remove(path);
  return text;
}

bool hasVexVnni(const std::string &assembly) {
  return assembly.find("{vex}\tvpdp") != std::string::npos;
}

/// vmovw is AVX512-FP16's only plain move (LLVM uses it for 16-bit lanes).
bool hasFp16Move(const std::string &assembly) {
  return assembly.find("\tvmovw\t") != std::string::npos;
}

const rt::HalideX86Feature &feature(const std::string &name) {
  for (const rt::HalideX86Feature &f : rt::halideX86Features()) {
    if (name == f.name) {
      return f;
    }
  }
  ADD_FAILURE() << "no row for " << name;
  static rt::HalideX86Feature none{"", "", {}};
  return none;
}

bool hasPart(const rt::HalideX86Feature &f, const std::string &part) {
  return std::find(f.parts.begin(), f.parts.end(), part) != f.parts.end();
}

TEST(HalideTarget, SapphireRapidsCodeNeedsAvxVnniAndFp16) {
  const rt::HalideX86Feature &spr = feature("avx512_sapphirerapids");
  // 128- and 256-bit dot products: LLVM compresses EVEX vpdpwssd to the VEX
  // form, which only AVX-VNNI decodes (AMD Zen 4 has AVX512-VNNI only).
  for (int lanes : {4, 8}) {
    std::string assembly = dotProductAssembly(kSapphireRapids, lanes);
    EXPECT_NE(assembly.find("vpdpwssd"), std::string::npos) << lanes;
    if (hasVexVnni(assembly)) {
      EXPECT_TRUE(hasPart(spr, "avxvnni"))
          << "Halide emits {vex} vpdpwssd for " << lanes << " lanes";
    }
  }
  EXPECT_TRUE(hasVexVnni(dotProductAssembly(kSapphireRapids, 8)));
  // 512-bit: the EVEX form, AVX512-VNNI.
  std::string wide = dotProductAssembly(kSapphireRapids, 16);
  EXPECT_NE(wide.find("vpdpwssd\t%zmm"), std::string::npos);
  EXPECT_TRUE(hasPart(spr, "avx512vnni"));
  // 16-bit gathers: LLVM loads the first lane with AVX512-FP16's vmovw.
  EXPECT_TRUE(hasFp16Move(gather16Assembly(kSapphireRapids)));
  EXPECT_TRUE(hasPart(spr, "avx512fp16"));
}

TEST(HalideTarget, CannonlakeCodeNeedsNeither) {
  // What Zen 4 gets from --cpu=host: no VNNI at all, no FP16, and the table
  // asks for neither.
  for (int lanes : {4, 8, 16}) {
    std::string assembly = dotProductAssembly(kCannonlake, lanes);
    EXPECT_EQ(assembly.find("vpdp"), std::string::npos) << lanes;
  }
  EXPECT_FALSE(hasFp16Move(gather16Assembly(kCannonlake)));
  for (const char *name : {"avx512_cannonlake", "avx512_skylake", "avx512"}) {
    const rt::HalideX86Feature &f = feature(name);
    for (const char *part : {"avxvnni", "avx512fp16", "avx512vnni"}) {
      EXPECT_FALSE(hasPart(f, part)) << name << " " << part;
    }
  }
}

TEST(HalideTarget, HostTargetRunsHere) {
  const rt::CpuFeatures &cpu = rt::hostCpuFeatures();
  std::string host = synth::cpu::hostTarget();
  std::printf("CPU: %s\nHalide's host target: %s\nsynthc --cpu=host: %s\n",
              cpu.brand.c_str(), Halide::get_host_target().to_string().c_str(),
              host.c_str());
  std::vector<std::string> parts = absl::StrSplit(host, '-');
  ASSERT_GE(parts.size(), 3u);
  std::vector<std::string> features(parts.begin() + 3, parts.end());
  absl::Status runs = rt::checkRequiredFeatures(features, cpu);
  EXPECT_TRUE(runs.ok()) << runs.message();
  // Nothing this CPU can run is dropped: every Halide feature it has that
  // Halide's host target names is still there.
  Halide::Target halideHost = Halide::get_host_target();
  for (const std::string &name : rt::halideFeaturesOf(cpu)) {
    Halide::Target::Feature f = Halide::Target::feature_from_name(name);
    if (halideHost.has_feature(f)) {
      EXPECT_NE(std::find(features.begin(), features.end(), name),
                features.end())
          << name;
    }
  }
}

} // namespace
