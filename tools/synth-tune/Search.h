//===- Search.h - the schedule space of a kernel, and moves in it ---------===//
//
// synth-tune's search space: for each field of a kernel's schedule
// (passes/CpuSchedule.h) the values worth timing on the target class, and the
// two moves of the search, a random point and a neighbour of a point. Every
// schedule returned passes sched::validate, so synthc accepts it.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_TOOLS_SYNTH_TUNE_SEARCH_H
#define SYNTHC_TOOLS_SYNTH_TUNE_SEARCH_H

#include "passes/CpuSchedule.h"

#include <optional>
#include <random>
#include <string>
#include <vector>

namespace synth::tune {

struct FieldSpace {
  std::string name;
  /// The values tried, in increasing order for integers.
  std::vector<sched::FieldValue> values;
};

struct KernelSpace {
  std::string kernel;
  sched::KernelTraits traits;
  const sched::Isa *isa = nullptr;
  std::vector<FieldSpace> fields;

  /// Number of points (capped at 1e18), before the cross-field rules.
  double size() const;
};

/// The space of a kernel on `isa`: choices as they are; integers by powers
/// of two up to the field's range, the target's lanes and the kernel's
/// extents (block sizes of at most 16 take every value), plus the default.
KernelSpace spaceOf(const std::string &kernel,
                    const sched::KernelTraits &traits, const sched::Isa &isa,
                    const sched::Schedule &defaults);

/// A uniformly drawn valid schedule (nullopt after 200 invalid draws).
std::optional<sched::Schedule> randomPoint(const KernelSpace &space,
                                           std::mt19937_64 &rng);

/// `from` with one or two fields moved to an adjacent value (integers) or
/// another choice; valid, and different from `from` (nullopt if no such
/// neighbour was found).
std::optional<sched::Schedule> neighbour(const KernelSpace &space,
                                         const sched::Schedule &from,
                                         std::mt19937_64 &rng);

} // namespace synth::tune

#endif // SYNTHC_TOOLS_SYNTH_TUNE_SEARCH_H
