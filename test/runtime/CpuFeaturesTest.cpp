//===- CpuFeaturesTest.cpp - cpuid detection and required features --------===//

#include "runtime/CpuFeatures.h"

#include "TestUtil.h"

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

#include <algorithm>
#include <cstdio>
#include <set>

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
  // Every Halide feature the CPU has, it has by the table: base and parts.
  for (const rt::HalideX86Feature &feature : rt::halideX86Features()) {
    if (!cpu.has(feature.name)) {
      continue;
    }
    if (*feature.base) {
      EXPECT_TRUE(cpu.has(feature.base)) << feature.name;
    }
    for (const char *part : feature.parts) {
      EXPECT_TRUE(cpu.has(part)) << feature.name << " needs " << part;
    }
  }
  std::printf("this CPU: %s; Halide features: %s\n", cpu.brand.c_str(),
              absl::StrJoin(rt::halideFeaturesOf(cpu), " ").c_str());
}

TEST(CpuFeatures, TableIsWellFormed) {
  const std::vector<std::string> &known = rt::knownCpuFeatures();
  auto isKnown = [&](const std::string &name) {
    return std::find(known.begin(), known.end(), name) != known.end();
  };
  std::set<std::string> seen;
  for (const rt::HalideX86Feature &feature : rt::halideX86Features()) {
    EXPECT_TRUE(isKnown(feature.name)) << feature.name;
    // A base comes first, so one pass in table order derives everything.
    if (*feature.base) {
      EXPECT_TRUE(seen.count(feature.base)) << feature.name;
    }
    EXPECT_FALSE(feature.parts.empty()) << feature.name;
    for (const char *part : feature.parts) {
      EXPECT_TRUE(isKnown(part)) << feature.name << ": " << part;
    }
    EXPECT_TRUE(seen.insert(feature.name).second) << feature.name;
  }
}

// The two CPUs of this project's machine kind, by their cpuid extensions
// (Intel SDM / AMD APM; /proc/cpuinfo of both, 2026-12).
std::set<std::string> zen4Extensions() {
  return {"sse2",
          "ssse3",
          "sse41",
          "sse42",
          "popcnt",
          "avx",
          "fma",
          "f16c",
          "bmi1",
          "bmi2",
          "avx2",
          "gfni",
          "vaes",
          "vpclmulqdq",
          "avx512f",
          "avx512cd",
          "avx512dq",
          "avx512bw",
          "avx512vl",
          "avx512ifma",
          "avx512vbmi",
          "avx512vbmi2",
          "avx512vnni",
          "avx512bitalg",
          "avx512vpopcntdq",
          "avx512bf16"};
}

TEST(CpuFeatures, Zen4IsCannonlakeNotSapphireRapids) {
  // Halide 14's get_host_target() reports avx512_sapphirerapids here (it asks
  // for AVX512-VNNI and AVX512-BF16 only); the code it generates may use
  // AVX-VNNI and AVX512-FP16, which Zen 4 lacks.
  std::set<std::string> f = zen4Extensions();
  rt::deriveHalideFeatures(f);
  for (const char *name : {"sse41", "avx", "avx2", "fma", "f16c", "avx512",
                           "avx512_skylake", "avx512_cannonlake"}) {
    EXPECT_TRUE(f.count(name)) << name;
  }
  EXPECT_FALSE(f.count("avx512_sapphirerapids"));
  EXPECT_FALSE(f.count("avx512_knl"));
  EXPECT_FALSE(f.count("fma4"));
}

TEST(CpuFeatures, SapphireRapidsHasEverything) {
  std::set<std::string> f = zen4Extensions();
  f.insert("avxvnni");
  f.insert("avx512fp16");
  rt::deriveHalideFeatures(f);
  EXPECT_TRUE(f.count("avx512_sapphirerapids"));
  // Without any one part, the composite is gone (and nothing else is).
  const rt::HalideX86Feature &spr = rt::halideX86Features().back();
  ASSERT_STREQ(spr.name, "avx512_sapphirerapids");
  for (const char *part : spr.parts) {
    std::set<std::string> g = zen4Extensions();
    g.insert("avxvnni");
    g.insert("avx512fp16");
    g.erase(part);
    rt::deriveHalideFeatures(g);
    EXPECT_FALSE(g.count("avx512_sapphirerapids")) << "without " << part;
    EXPECT_TRUE(g.count("avx512_cannonlake")) << "without " << part;
  }
  // A base taken away takes what builds on it.
  std::set<std::string> g = zen4Extensions();
  g.erase("avx512vl");
  rt::deriveHalideFeatures(g);
  EXPECT_TRUE(g.count("avx512"));
  EXPECT_FALSE(g.count("avx512_skylake"));
  EXPECT_FALSE(g.count("avx512_cannonlake"));
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
      {"avx512_vbmi2", "avx512vbmi2"},
      {"avx512_vnni", "avx512vnni"},
      {"avx512_bitalg", "avx512bitalg"},
      {"avx512_vpopcntdq", "avx512vpopcntdq"},
      {"avx512_fp16", "avx512fp16"},
      {"avx_vnni", "avxvnni"},
      {"gfni", "gfni"},
      {"vaes", "vaes"},
      {"vpclmulqdq", "vpclmulqdq"},
      {"bmi1", "bmi1"},
      {"bmi2", "bmi2"},
      {"popcnt", "popcnt"},
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
