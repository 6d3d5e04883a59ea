//===- CpuFeatures.h - what this CPU can run ------------------------------===//
//
// Detects x86 instruction-set features with cpuid and xgetbv (an AVX or
// AVX-512 feature counts only when the OS saves its registers), spelled as
// Halide spells target features, and checks an artifact's required_features.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_CPUFEATURES_H
#define SYNTHC_RUNTIME_CPUFEATURES_H

#include "absl/status/status.h"

#include <set>
#include <string>
#include <vector>

namespace synth::rt {

struct CpuFeatures {
  /// "x86-64" (Halide's and the manifest's spelling), or the compiler's name
  /// of another architecture ("aarch64", ...).
  std::string arch;
  /// The processor's brand string when cpuid has one ("AMD EPYC 9654 ...").
  std::string brand;
  /// Detected features: Halide target features (sse41, avx, avx2, fma, fma4,
  /// f16c, avx512, avx512_knl, avx512_skylake, avx512_cannonlake,
  /// avx512_sapphirerapids) and the individual extensions they are made of
  /// (sse2, ssse3, sse42, popcnt, bmi1, bmi2, avx512f, avx512cd, avx512dq,
  /// avx512bw, avx512vl, avx512er, avx512pf, avx512ifma, avx512vbmi,
  /// avx512vnni, avx512bf16, avx512fp16, avxvnni).
  std::set<std::string> features;

  bool has(const std::string &feature) const {
    return features.count(feature) != 0;
  }
};

/// Every feature name this runtime can detect (whether present or not).
const std::vector<std::string> &knownCpuFeatures();

/// One of Halide 14's x86 target features and what code generated for it may
/// execute: Halide compiles for the feature with an LLVM CPU (-mcpu) and
/// attributes (-mattr), and LLVM may then emit any instruction of that CPU.
/// `parts` are those extensions (as detected here), `base` the Halide feature
/// it extends ("" for none). This one table decides both which features the
/// runtime reports (a CPU has the feature when it has its base and every
/// part) and which features synthc puts in a `--cpu=host` build (those this
/// machine has), so a host build always loads where it was built.
/// docs/artifact-format.md explains every row.
struct HalideX86Feature {
  const char *name;
  const char *base;
  std::vector<const char *> parts;
};
const std::vector<HalideX86Feature> &halideX86Features();

/// Adds to `features` (detected extensions) every Halide feature of the table
/// whose base and parts are there, and removes those whose are not.
void deriveHalideFeatures(std::set<std::string> &features);

/// The Halide target features (names of halideX86Features()) that `cpu` has,
/// in the table's order.
std::vector<std::string> halideFeaturesOf(const CpuFeatures &cpu);

/// The features of the CPU this process runs on (computed once).
const CpuFeatures &hostCpuFeatures();

/// OK when `cpu` has every feature of `required`; otherwise an error naming
/// the missing ones (and those unknown to this runtime, which count as
/// missing since they cannot be checked).
absl::Status checkRequiredFeatures(const std::vector<std::string> &required,
                                   const CpuFeatures &cpu);

} // namespace synth::rt

#endif // SYNTHC_RUNTIME_CPUFEATURES_H
