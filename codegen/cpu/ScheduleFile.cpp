//===- ScheduleFile.cpp - kernel schedules as an editable JSON file -------===//

#include "codegen/cpu/ScheduleFile.h"

#include "dialect/SynthOps.h"
#include "passes/CpuSchedule.h"
#include "passes/KernelUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <set>

namespace synth::cpu {

using namespace mlir;
using mlir::synth::KernelOp;
using mlir::synth::kernelTraits;
using mlir::synth::ScheduleAttr;
using mlir::synth::scheduleFromAttr;
using mlir::synth::scheduleToAttr;

namespace {

json::Value shapeOf(Type type) {
  json::Value dims = json::Value::array();
  if (auto tensor = dyn_cast<RankedTensorType>(type)) {
    for (int64_t d : tensor.getShape()) {
      dims.push(json::Value::integer(d));
    }
  }
  return dims;
}

json::Value shapesOf(TypeRange types) {
  json::Value shapes = json::Value::array();
  for (Type t : types) {
    shapes.push(shapeOf(t));
  }
  return shapes;
}

/// `pattern` with `*` matching any run of characters.
bool globMatch(const std::string &pattern, const std::string &text) {
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

std::vector<KernelOp> kernelsOf(ModuleOp module) {
  std::vector<KernelOp> kernels;
  for (func::FuncOp func : module.getOps<func::FuncOp>()) {
    func.walk([&](KernelOp k) { kernels.push_back(k); });
  }
  return kernels;
}

class Applier {
public:
  Applier(ModuleOp module, const std::string &source)
      : module_(module), source_(source) {}

  absl::Status fail(const json::Value &at, const std::string &what) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ":", at.line(), ":", at.column(), ": ", what));
  }

  absl::Status run(const json::Value &file) {
    if (!file.isObject()) {
      return fail(file, "expected a schedule file (an object with \"format\", "
                        "\"version\" and \"kernels\")");
    }
    for (const auto &[key, value] : file.members()) {
      if (key != "format" && key != "version" && key != "kernels" &&
          key != "note") {
        return fail(value, absl::StrCat("unknown key \"", key,
                                        "\" (expected format, version, "
                                        "kernels, note)"));
      }
    }
    const json::Value *format = file.find("format");
    if (!format || !format->isString() ||
        format->asString() != kScheduleFormat) {
      return fail(format ? *format : file,
                  absl::StrCat("\"format\" must be \"", kScheduleFormat, "\""));
    }
    const json::Value *version = file.find("version");
    if (!version || !version->isInteger() ||
        version->asInt() != kScheduleVersion) {
      return fail(version ? *version : file,
                  absl::StrCat("\"version\" must be ", kScheduleVersion));
    }
    const json::Value *entries = file.find("kernels");
    if (!entries || !entries->isArray()) {
      return fail(entries ? *entries : file,
                  "\"kernels\" must be an array of entries");
    }
    std::vector<KernelOp> kernels = kernelsOf(module_);
    std::set<Operation *> touched;
    for (const json::Value &entry : entries->items()) {
      if (absl::Status s = applyEntry(entry, kernels, touched); !s.ok()) {
        return s;
      }
    }
    // Whole schedules (cross-field rules) once every entry is in.
    for (KernelOp kernel : kernels) {
      if (!touched.count(kernel)) {
        continue;
      }
      sched::KernelTraits traits = kernelTraits(kernel);
      for (NamedAttribute target : kernel.getScheduleAttr().getTargets()) {
        const sched::Isa *isa = sched::findIsa(target.getName().str());
        sched::Schedule s =
            scheduleFromAttr(cast<DictionaryAttr>(target.getValue()));
        if (auto error = sched::validate(s, traits, *isa)) {
          return absl::InvalidArgumentError(
              absl::StrCat(source_, ": kernel '", kernel.getKernelName().str(),
                           "', schedule for ", isa->name, ": ", *error));
        }
      }
    }
    return absl::OkStatus();
  }

private:
  absl::Status applyEntry(const json::Value &entry,
                          const std::vector<KernelOp> &kernels,
                          std::set<Operation *> &touched) {
    if (!entry.isObject()) {
      return fail(entry, "a kernel entry must be an object");
    }
    for (const auto &[key, value] : entry.members()) {
      if (key != "name" && key != "op" && key != "inputs" && key != "outputs" &&
          key != "schedule" && key != "scheduler") {
        return fail(value, absl::StrCat("unknown key \"", key,
                                        "\" in a kernel entry (expected "
                                        "name, op, inputs, outputs, "
                                        "schedule, scheduler)"));
      }
      if ((key == "name" || key == "op" || key == "scheduler") &&
          !value.isString()) {
        return fail(value, absl::StrCat("\"", key, "\" must be a string"));
      }
    }
    const json::Value *name = entry.find("name");
    const json::Value *op = entry.find("op");
    const json::Value *inputs = entry.find("inputs");
    const json::Value *outputs = entry.find("outputs");
    const json::Value *schedule = entry.find("schedule");
    const json::Value *scheduler = entry.find("scheduler");
    if (scheduler && scheduler->asString() != "explicit" &&
        !sched::isAutoscheduler(scheduler->asString())) {
      return fail(*scheduler,
                  absl::StrCat("unknown scheduler \"", scheduler->asString(),
                               "\" (expected explicit, ",
                               absl::StrJoin(sched::autoschedulers(), ", "),
                               ")"));
    }
    if (!name && !op) {
      return fail(entry, "a kernel entry needs \"name\" (a kernel name, `*` "
                         "matches any characters) or \"op\" (a kernel kind)");
    }
    if (schedule ? !schedule->isObject() : !scheduler) {
      return fail(schedule ? *schedule : entry,
                  "a kernel entry needs \"schedule\": an object of target "
                  "classes (avx512, avx2, sse41, or all) to fields, or "
                  "\"scheduler\"");
    }
    std::string serializedInputs = inputs ? json::serialize(*inputs) : "";
    std::string serializedOutputs = outputs ? json::serialize(*outputs) : "";
    std::vector<KernelOp> matched;
    for (KernelOp kernel : kernels) {
      sched::KernelTraits traits = kernelTraits(kernel);
      if (name && !globMatch(name->asString(), kernel.getKernelName().str())) {
        continue;
      }
      if (op && op->asString() != sched::kernelKind(traits)) {
        continue;
      }
      if (inputs && json::serialize(shapesOf(kernel.getInputs().getTypes())) !=
                        serializedInputs) {
        continue;
      }
      if (outputs &&
          json::serialize(shapesOf(kernel.getResults().getTypes())) !=
              serializedOutputs) {
        continue;
      }
      matched.push_back(kernel);
    }
    if (matched.empty()) {
      std::string what = name
                             ? absl::StrCat("kernel \"", name->asString(), "\"")
                             : absl::StrCat("op \"", op->asString(), "\"");
      return fail(entry,
                  absl::StrCat(what,
                               (inputs || outputs) ? " with these shapes" : "",
                               " matches no kernel of this model"));
    }
    json::Value noFields = json::Value::object();
    if (!schedule) {
      schedule = &noFields;
    }
    for (const auto &[cls, fields] : schedule->members()) {
      if (cls != "all" && !sched::findIsa(cls)) {
        return fail(fields, absl::StrCat("unknown target class \"", cls,
                                         "\" (expected avx512, avx2, sse41 "
                                         "or all)"));
      }
      if (!fields.isObject()) {
        return fail(fields, absl::StrCat("the fields of \"", cls,
                                         "\" must be an object"));
      }
    }
    for (KernelOp kernel : matched) {
      if (absl::Status s = applyTo(kernel, *schedule); !s.ok()) {
        return s;
      }
      if (scheduler) {
        mlir::synth::setCpuScheduler(kernel, scheduler->asString() == "explicit"
                                                 ? ""
                                                 : scheduler->asString());
      }
      touched.insert(kernel);
    }
    return absl::OkStatus();
  }

  absl::Status applyTo(KernelOp kernel, const json::Value &schedule) {
    MLIRContext *ctx = kernel.getContext();
    sched::KernelTraits traits = kernelTraits(kernel);
    ScheduleAttr old = kernel.getScheduleAttr();
    NamedAttrList perTarget;
    if (old) {
      perTarget.append(old.getTargets().getValue());
    }
    for (const auto &[cls, fields] : schedule.members()) {
      std::vector<const sched::Isa *> isas;
      if (cls == "all") {
        for (const sched::Isa &isa : sched::isas()) {
          isas.push_back(&isa);
        }
      } else {
        isas.push_back(sched::findIsa(cls));
      }
      for (const sched::Isa *isa : isas) {
        DictionaryAttr built =
            old ? old.getTarget(isa->name) : DictionaryAttr();
        sched::Schedule s;
        if (built) {
          s = scheduleFromAttr(built);
        }
        for (const auto &[field, value] : fields.members()) {
          sched::FieldValue v;
          if (value.isInteger()) {
            v = value.asInt();
          } else if (value.isString()) {
            v = value.asString();
          } else {
            return fail(value,
                        absl::StrCat("kernel '", kernel.getKernelName().str(),
                                     "', ", isa->name, ": field '", field,
                                     "': expected an integer or a string, got ",
                                     json::Value::kindName(value.kind())));
          }
          if (auto error = sched::validateField(field, v, traits, *isa)) {
            return fail(value,
                        absl::StrCat("kernel '", kernel.getKernelName().str(),
                                     "', ", isa->name, ": ", *error));
          }
          s.fields[field] = v;
        }
        // Classes this build does not compile are checked, not applied.
        if (built) {
          perTarget.set(isa->name, scheduleToAttr(ctx, s));
        }
      }
    }
    kernel.setScheduleAttr(
        ScheduleAttr::get(ctx, perTarget.getDictionary(ctx)));
    return absl::OkStatus();
  }

  ModuleOp module_;
  std::string source_;
};

} // namespace

json::Value fieldsToJson(const sched::Schedule &schedule) {
  json::Value fields = json::Value::object();
  for (const auto &[name, value] : schedule.fields) {
    if (const int64_t *i = std::get_if<int64_t>(&value)) {
      fields.set(name, json::Value::integer(*i));
    } else {
      fields.set(name, json::Value::string(std::get<std::string>(value)));
    }
  }
  return fields;
}

json::Value exportSchedules(ModuleOp module) {
  json::Value kernels = json::Value::array();
  for (KernelOp kernel : kernelsOf(module)) {
    sched::KernelTraits traits = kernelTraits(kernel);
    json::Value entry = json::Value::object();
    entry.set("name", json::Value::string(kernel.getKernelName().str()));
    entry.set("op", json::Value::string(sched::kernelKind(traits)));
    entry.set("inputs", shapesOf(kernel.getInputs().getTypes()));
    entry.set("outputs", shapesOf(kernel.getResults().getTypes()));
    if (std::string scheduler = mlir::synth::cpuScheduler(kernel);
        !scheduler.empty()) {
      entry.set("scheduler", json::Value::string(scheduler));
    }
    json::Value schedule = json::Value::object();
    if (ScheduleAttr attr = kernel.getScheduleAttr()) {
      for (NamedAttribute target : attr.getTargets()) {
        schedule.set(target.getName().str(),
                     fieldsToJson(scheduleFromAttr(
                         cast<DictionaryAttr>(target.getValue()))));
      }
    }
    entry.set("schedule", std::move(schedule));
    kernels.push(std::move(entry));
  }
  json::Value file = json::Value::object();
  file.set("format", json::Value::string(kScheduleFormat));
  file.set("version", json::Value::integer(kScheduleVersion));
  file.set("kernels", std::move(kernels));
  return file;
}

absl::Status useScheduler(ModuleOp module, const std::string &scheduler) {
  if (scheduler != "explicit" && !sched::isAutoscheduler(scheduler)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown CPU scheduler '", scheduler, "' (expected explicit, ",
        absl::StrJoin(sched::autoschedulers(), ", "), ")"));
  }
  for (KernelOp kernel : kernelsOf(module)) {
    mlir::synth::setCpuScheduler(kernel,
                                 scheduler == "explicit" ? "" : scheduler);
  }
  return absl::OkStatus();
}

absl::Status applySchedules(ModuleOp module, const json::Value &file,
                            const std::string &source) {
  return Applier(module, source).run(file);
}

} // namespace synth::cpu
