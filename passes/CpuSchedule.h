//===- CpuSchedule.h - what a CPU kernel schedule holds, and its defaults -===//
//
// The one definition of the CPU back end's schedule: which fields a kernel's
// `#synth.schedule` has (by the ops in the kernel), what values each field
// may take on each x86 target class, and the default of each field from a
// heuristic that knows the target's vector lanes and register count.
//
// Plain C++ (no MLIR, no Halide), shared by `synth-assign-schedules`, the
// Halide back end (which takes every decision from these fields), synthc's
// schedule files and synth-tune. docs/schedules.md documents every field.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_PASSES_CPUSCHEDULE_H
#define SYNTHC_PASSES_CPUSCHEDULE_H

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace synth::sched {

/// The x86 target classes of a CPU build: a portable artifact has one kernel
/// variant (and one schedule) per class; a --cpu=host build the host's.
struct Isa {
  const char *name; // "avx512", "avx2", "sse41"
  int floatLanes;   // float32 lanes of one vector register
  int registers;    // vector registers
};
const std::vector<Isa> &isas();
const Isa *findIsa(const std::string &name);
/// The class of a Halide target string: avx512 if it has the avx512 feature,
/// else avx2, else sse41.
const Isa &isaOfHalideTarget(const std::string &target);

/// A field's value: an integer or one of a field's named choices.
using FieldValue = std::variant<int64_t, std::string>;
std::string toString(const FieldValue &value);

/// The Halide 14 autoschedulers a kernel can be built with instead of its
/// explicit schedule (synthc --cpu-scheduler, a schedule file's "scheduler"):
/// "adams2019", "li2018", "mullapudi2016".
const std::vector<std::string> &autoschedulers();
bool isAutoscheduler(const std::string &name);

/// One schedule, for one kernel on one target class.
class Schedule {
public:
  std::map<std::string, FieldValue> fields;

  /// The integer field `name`; throws std::out_of_range naming it when
  /// absent or not an integer (a schedule that was not validated).
  int64_t integer(const std::string &name) const;
  /// The choice field `name`; throws like integer().
  const std::string &choice(const std::string &name) const;
};

/// What a kernel is made of, as far as its schedule is concerned: the names
/// of its ops (without the dialect prefix: "linear", "fused_attention", ...)
/// and the shapes the heuristic looks at.
struct KernelTraits {
  std::vector<std::string> ops;
  /// Head dimension of a fused attention (values' last dimension), or 0.
  int64_t headDim = 0;
  /// Number of keys of a fused attention, or 0.
  int64_t keys = 0;
};

struct FieldDef {
  std::string name;
  /// Choices of a choice field; empty for integer fields.
  std::vector<std::string> choices;
  int64_t min = 0, max = 0; // integer fields: inclusive range
  bool powerOfTwo = false;  // integer fields: 0 allowed when min == 0
  std::string doc;
};

/// The loop nest a kernel's schedule describes: the first op among
/// fused_attention_grad, attention_stats, fused_attention, attend (unfused
/// attention's softmax and value product), linear_weight_grad, linear, or
/// "elementwise" for any other kernel.
std::string kernelKind(const KernelTraits &kernel);

/// Every field of the kernel's schedule, in documentation order.
std::vector<FieldDef> fieldsOf(const KernelTraits &kernel);

/// The default schedule of the kernel on `isa`: every field of fieldsOf().
Schedule defaultSchedule(const KernelTraits &kernel, const Isa &isa);

/// Checks that `schedule` has exactly the kernel's fields with values that
/// are valid on `isa`; returns what is wrong ("field 'x': ..."), or nullopt.
std::optional<std::string> validate(const Schedule &schedule,
                                    const KernelTraits &kernel, const Isa &isa);

/// Checks one field's value (unknown field, wrong type, out of range, a
/// vector width the target lacks, a parallel loop the kernel doesn't have).
std::optional<std::string> validateField(const std::string &name,
                                         const FieldValue &value,
                                         const KernelTraits &kernel,
                                         const Isa &isa);

} // namespace synth::sched

#endif // SYNTHC_PASSES_CPUSCHEDULE_H
