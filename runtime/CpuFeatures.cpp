//===- CpuFeatures.cpp - cpuid/xgetbv feature detection -------------------===//
//
// Bit positions from the Intel SDM vol. 2A (CPUID) and AMD APM vol. 3. Halide's
// composite features (avx512_skylake, ...) are derived from the extensions
// through one table, halideX86Features(), which synthc also uses to choose a
// `--cpu=host` target.
//
//===----------------------------------------------------------------------===//

#include "runtime/CpuFeatures.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SYNTH_X86 1
#endif

namespace synth::rt {

namespace {

#ifdef SYNTH_X86
struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf = 0) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

/// XCR0: which register states the OS saves on a context switch.
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

bool bit(uint32_t reg, int n) { return (reg >> n) & 1; }

CpuFeatures detect() {
  CpuFeatures cpu;
  cpu.arch = sizeof(void *) == 8 ? "x86-64" : "x86-32";
  std::set<std::string> &f = cpu.features;
  const uint32_t maxLeaf = cpuid(0).eax;
  const uint32_t maxExtLeaf = cpuid(0x80000000).eax;
  if (maxExtLeaf >= 0x80000004) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r, 16);
    }
    cpu.brand = brand;
    // Brand strings are padded with leading spaces on some CPUs.
    size_t start = cpu.brand.find_first_not_of(' ');
    cpu.brand = start == std::string::npos ? "" : cpu.brand.substr(start);
    while (!cpu.brand.empty() && cpu.brand.back() == ' ') {
      cpu.brand.pop_back();
    }
  }
  if (maxLeaf < 1) {
    return cpu;
  }
  Regs l1 = cpuid(1);
  if (bit(l1.edx, 26)) {
    f.insert("sse2");
  }
  if (bit(l1.ecx, 9)) {
    f.insert("ssse3");
  }
  if (bit(l1.ecx, 19)) {
    f.insert("sse41");
  }
  if (bit(l1.ecx, 20)) {
    f.insert("sse42");
  }
  if (bit(l1.ecx, 23)) {
    f.insert("popcnt");
  }
  // AVX state (XMM and YMM) must be enabled by the OS (OSXSAVE + XCR0).
  const bool osxsave = bit(l1.ecx, 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool osAvx = (xcr0 & 0x6) == 0x6;
  const bool osAvx512 = osAvx && (xcr0 & 0xE0) == 0xE0;
  if (osAvx) {
    if (bit(l1.ecx, 28)) {
      f.insert("avx");
    }
    if (bit(l1.ecx, 12)) {
      f.insert("fma");
    }
    if (bit(l1.ecx, 29)) {
      f.insert("f16c");
    }
    if (maxExtLeaf >= 0x80000001 && bit(cpuid(0x80000001).ecx, 16)) {
      f.insert("fma4");
    }
  }
  if (maxLeaf >= 7) {
    Regs l7 = cpuid(7, 0);
    Regs l71 = l7.eax >= 1 ? cpuid(7, 1) : Regs{};
    if (bit(l7.ebx, 3)) {
      f.insert("bmi1");
    }
    if (bit(l7.ebx, 8)) {
      f.insert("bmi2");
    }
    if (osAvx && bit(l7.ebx, 5)) {
      f.insert("avx2");
    }
    if (osAvx && bit(l71.eax, 4)) {
      f.insert("avxvnni");
    }
    // GFNI has SSE forms; VAES and VPCLMULQDQ widen AES and PCLMUL to YMM.
    if (bit(l7.ecx, 8)) {
      f.insert("gfni");
    }
    if (osAvx && bit(l7.ecx, 9)) {
      f.insert("vaes");
    }
    if (osAvx && bit(l7.ecx, 10)) {
      f.insert("vpclmulqdq");
    }
    if (osAvx512) {
      struct {
        uint32_t reg;
        int bit;
        const char *name;
      } avx512[] = {
          {l7.ebx, 16, "avx512f"},         {l7.ebx, 17, "avx512dq"},
          {l7.ebx, 21, "avx512ifma"},      {l7.ebx, 26, "avx512pf"},
          {l7.ebx, 27, "avx512er"},        {l7.ebx, 28, "avx512cd"},
          {l7.ebx, 30, "avx512bw"},        {l7.ebx, 31, "avx512vl"},
          {l7.ecx, 1, "avx512vbmi"},       {l7.ecx, 6, "avx512vbmi2"},
          {l7.ecx, 11, "avx512vnni"},      {l7.ecx, 12, "avx512bitalg"},
          {l7.ecx, 14, "avx512vpopcntdq"}, {l7.edx, 23, "avx512fp16"},
          {l71.eax, 5, "avx512bf16"},
      };
      for (const auto &feature : avx512) {
        if (bit(feature.reg, feature.bit)) {
          f.insert(feature.name);
        }
      }
    }
  }
  deriveHalideFeatures(f);
  return cpu;
}
#else
CpuFeatures detect() {
  CpuFeatures cpu;
#if defined(__aarch64__)
  cpu.arch = "arm-64";
#else
  cpu.arch = "unknown";
#endif
  return cpu;
}
#endif

} // namespace

const std::vector<std::string> &knownCpuFeatures() {
  static const std::vector<std::string> kKnown = {"sse2",
                                                  "ssse3",
                                                  "sse41",
                                                  "sse42",
                                                  "popcnt",
                                                  "avx",
                                                  "fma",
                                                  "fma4",
                                                  "f16c",
                                                  "bmi1",
                                                  "bmi2",
                                                  "avx2",
                                                  "avxvnni",
                                                  "gfni",
                                                  "vaes",
                                                  "vpclmulqdq",
                                                  "avx512f",
                                                  "avx512cd",
                                                  "avx512dq",
                                                  "avx512bw",
                                                  "avx512vl",
                                                  "avx512er",
                                                  "avx512pf",
                                                  "avx512ifma",
                                                  "avx512vbmi",
                                                  "avx512vbmi2",
                                                  "avx512vnni",
                                                  "avx512bitalg",
                                                  "avx512vpopcntdq",
                                                  "avx512bf16",
                                                  "avx512fp16",
                                                  "avx512",
                                                  "avx512_knl",
                                                  "avx512_skylake",
                                                  "avx512_cannonlake",
                                                  "avx512_sapphirerapids"};
  return kKnown;
}

const std::vector<HalideX86Feature> &halideX86Features() {
  // Halide 14's CodeGen_X86 picks -mcpu from the most capable feature
  // (sapphirerapids, cannonlake, skylake-avx512, knl, haswell for avx2,
  // corei7-avx for avx, penryn for sse41) and adds -mattr for the others; the
  // parts are what those let LLVM emit. Rows follow docs/artifact-format.md.
  static const std::vector<HalideX86Feature> kTable = {
      {"sse41", "", {"sse41", "ssse3"}},
      {"avx", "sse41", {"avx", "sse42", "popcnt"}},
      {"avx2", "avx", {"avx2", "bmi1", "bmi2"}},
      {"fma", "", {"fma"}},
      {"fma4", "", {"fma4"}},
      {"f16c", "", {"f16c"}},
      {"avx512", "", {"avx512f", "avx512cd"}},
      {"avx512_knl", "avx512", {"avx512pf", "avx512er"}},
      {"avx512_skylake", "avx512", {"avx512vl", "avx512bw", "avx512dq"}},
      {"avx512_cannonlake", "avx512_skylake", {"avx512ifma", "avx512vbmi"}},
      // -mcpu=sapphirerapids: Ice Lake's AVX-512 extensions, AVX512-VNNI and
      // AVX512-BF16 (Halide's own check stops here), and also the VEX-encoded
      // AVX-VNNI (LLVM compresses 128/256-bit EVEX vpdp* to it) and
      // AVX512-FP16, which AMD Zen 4 lacks. Halide's AMX lowering needs
      // AMXTile-scheduled stores, which synthc never schedules.
      {"avx512_sapphirerapids",
       "avx512_cannonlake",
       {"avx512vnni", "avx512bf16", "avxvnni", "avx512fp16", "avx512vbmi2",
        "avx512bitalg", "avx512vpopcntdq", "gfni", "vaes", "vpclmulqdq"}},
  };
  return kTable;
}

void deriveHalideFeatures(std::set<std::string> &f) {
  // In the table's order (a base precedes what extends
  // it). sse41, avx, avx2, fma, fma4 and f16c are also extensions of their
  // own: the table decides whether Halide's feature of that name can run.
  for (const HalideX86Feature &feature : halideX86Features()) {
    bool has = *feature.base == '\0' || f.count(feature.base) != 0;
    for (const char *part : feature.parts) {
      has = has && f.count(part) != 0;
    }
    if (has) {
      f.insert(feature.name);
    } else {
      f.erase(feature.name);
    }
  }
}

std::vector<std::string> halideFeaturesOf(const CpuFeatures &cpu) {
  std::vector<std::string> names;
  for (const HalideX86Feature &feature : halideX86Features()) {
    if (cpu.has(feature.name)) {
      names.push_back(feature.name);
    }
  }
  return names;
}

const CpuFeatures &hostCpuFeatures() {
  static const CpuFeatures kHost = detect();
  return kHost;
}

absl::Status checkRequiredFeatures(const std::vector<std::string> &required,
                                   const CpuFeatures &cpu) {
  const std::vector<std::string> &known = knownCpuFeatures();
  std::vector<std::string> missing, unknown;
  for (const std::string &feature : required) {
    if (std::find(known.begin(), known.end(), feature) == known.end()) {
      unknown.push_back(feature);
    } else if (!cpu.has(feature)) {
      missing.push_back(feature);
    }
  }
  if (missing.empty() && unknown.empty()) {
    return absl::OkStatus();
  }
  std::string message;
  if (!missing.empty()) {
    message = absl::StrCat("this CPU lacks required feature",
                           missing.size() > 1 ? "s " : " ",
                           absl::StrJoin(missing, ", "));
  }
  if (!unknown.empty()) {
    absl::StrAppend(
        &message, message.empty() ? "" : "; ", "required feature",
        unknown.size() > 1 ? "s " : " ", absl::StrJoin(unknown, ", "),
        unknown.size() > 1 ? " are" : " is", " unknown to this runtime");
  }
  // Halide features only: the list a user compares with --cpu choices.
  std::vector<std::string> halide = halideFeaturesOf(cpu);
  absl::StrAppend(&message, " (this CPU has: ",
                  halide.empty() ? "none of Halide's x86 features"
                                 : absl::StrJoin(halide, ", "),
                  ")");
  return absl::FailedPreconditionError(message);
}

} // namespace synth::rt
