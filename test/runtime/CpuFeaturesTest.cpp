//===- CpuFeaturesTest.cpp - cpuid detection and required features --------===//

#include "runtime/CpuFeatures.h"

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <fstream>
#include <sstream>

namespace {

namespace rt = synth::rt;

TEST(CpuFeatures, HostIsConsistent) {
  const rt::CpuFeatures &cpu = rt::hostCpuFeatures();
#if defined(__x86_64__)
  EXPECT_EQ(cpu.arch, "x86-64");
  EXPECT_TRUE(cpu.has("sse2")); // part of x86-64 itself
#endif
  // Every detected feature is one the runtime documents.
  for (const std::string &feature : cpu.features) {
    EXPECT_NE(std::find(rt::knownCpuFeatures().begin(),
                        rt::knownCpuFeatures().end(), feature),
              rt::knownCpuFeatures().end())
        << feature;
  }
  // Halide's composites imply their parts.
  if (cpu.has("avx512_skylake")) {
    for (const char *part : {"avx512", "avx512f", "avx512cd", "avx512bw",
                             "avx512dq", "avx512vl"}) {
      EXPECT_TRUE(cpu.has(part)) << part;
    }
  }
  if (cpu.has("avx512_sapphirerapids")) {
    EXPECT_TRUE(cpu.has("avx512_cannonlake"));
  }
}

TEST(CpuFeatures, AgreesWithProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  std::string line, flags;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      flags = " " + line.substr(line.find(':') + 1) + " ";
      break;
    }
  }
  if (flags.empty()) {
    GTEST_SKIP() << "no /proc/cpuinfo flags on this system";
  }
  // Linux's flag names -> ours. The kernel lists a feature only when it
  // also enabled its register state, as our xgetbv check requires.
  const std::pair<const char *, const char *> names[] = {
      {"sse4_1", "sse41"},
      {"sse4_2", "sse42"},
      {"avx", "avx"},
      {"avx2", "avx2"},
      {"fma", "fma"},
      {"f16c", "f16c"},
      {"avx512f", "avx512f"},
      {"avx512cd", "avx512cd"},
      {"avx512bw", "avx512bw"},
      {"avx512dq", "avx512dq"},
      {"avx512vl", "avx512vl"},
      {"avx512ifma", "avx512ifma"},
      {"avx512vbmi", "avx512vbmi"},
      {"avx512_bf16", "avx512bf16"},
  };
  const rt::CpuFeatures &cpu = rt::hostCpuFeatures();
  for (const auto &[linuxName, ours] : names) {
    bool listed =
        flags.find(std::string(" ") + linuxName + " ") != std::string::npos;
    EXPECT_EQ(cpu.has(ours), listed)
        << ours << " vs /proc/cpuinfo " << linuxName;
  }
}

TEST(CpuFeatures, RequiredFeatures) {
  rt::CpuFeatures old;
  old.arch = "x86-64";
  old.features = {"sse2", "ssse3", "sse41", "sse42"};
  EXPECT_TRUE(rt::checkRequiredFeatures({}, old).ok());
  EXPECT_TRUE(rt::checkRequiredFeatures({"sse41"}, old).ok());
  EXPECT_EQ(rt::checkRequiredFeatures({"sse41", "avx2", "fma"}, old).message(),
            "this CPU lacks required features avx2, fma (this CPU has: sse41)");
  EXPECT_EQ(rt::checkRequiredFeatures({"avx512_fp99"}, old).message(),
            "required feature avx512_fp99 is unknown to this runtime (this CPU "
            "has: sse41)");
  EXPECT_EQ(rt::checkRequiredFeatures({"avx2", "neon"}, old).message(),
            "this CPU lacks required feature avx2; required feature neon is "
            "unknown to this runtime (this CPU has: sse41)");
  rt::CpuFeatures none;
  EXPECT_EQ(rt::checkRequiredFeatures({"sse41"}, none).message(),
            "this CPU lacks required feature sse41 (this CPU has: none of "
            "Halide's x86 features)");
}

} // namespace
