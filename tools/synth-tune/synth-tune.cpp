//===- synth-tune.cpp - search the CPU schedules of a model's kernels -----===//
//
//   synth-tune MODEL.json -o tuned.json [--entry=forward] [--batch=B]
//       [--seq-len=N] [--budget=SECONDS] [--reps=R] [--threads=T] [--seed=S]
//       [--autoschedulers=adams2019,li2018,mullapudi2016|none]
//       [--cache=DIR] [--report=DIR]
//
// Builds the model's kernels for this machine (synthc's --cpu=host), then
// searches every kernel's schedule: the default first, Halide's
// autoschedulers as baselines, then rounds of candidates (random points of
// each kernel's space, then mostly neighbours of the best so far). A round
// gives every kernel one candidate, compiles them all into one artifact with
// the real back end, runs the entry with libsynthrt and times each kernel's
// calls (medians over --reps runs). A round counts only when every output of
// its run matches the default schedule's outputs (normwise relative error
// <= 1e-4, no NaN). The best schedule of each kernel (searched, default, or
// an autoscheduler) goes into a schedule file that `synthc --schedule`
// applies; the combination is built and timed once more for the report.
//
// Every measurement is cached under --cache by what determines it (the
// model, shapes, entry, CPU target and candidate schedules), and a whole run
// by its inputs: repeating a run costs nothing.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuArtifact.h"
#include "codegen/cpu/HalideKernels.h"
#include "codegen/cpu/ScheduleFile.h"
#include "frontend/ModelBuilder.h"
#include "frontend/ModelConfig.h"
#include "frontend/Parameters.h"
#include "passes/CpuSchedule.h"
#include "passes/KernelUtils.h"
#include "passes/Passes.h"
#include "runtime/Artifact.h"
#include "runtime/CpuFeatures.h"
#include "runtime/Executor.h"
#include "runtime/FileUtil.h"
#include "runtime/Json.h"
#include "runtime/Sha256.h"
#include "tools/synth-tune/Report.h"
#include "tools/synth-tune/Search.h"

#include "dialect/SynthDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/SourceMgr.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace rt = synth::rt;
namespace sched = synth::sched;
namespace tune = synth::tune;
namespace json = synth::json;
using Clock = std::chrono::steady_clock;

/// Bumped whenever what a cached measurement means changes.
constexpr const char *kCacheVersion = "synth-tune-2";

constexpr const char *kUsage = R"(usage:
  synth-tune MODEL.json|KERNELS.mlir -o tuned.json [--entry=forward|loss|gradients|train_step] [--batch=B] [--seq-len=N]
             [--src-len=S] [--tgt-len=T] [--budget=SECONDS] [--reps=R] [--threads=T] [--seed=S]
             [--autoschedulers=LIST|none] [--cache=DIR] [--report=DIR]

  KERNELS.mlir      synth IR instead of a model (functions with synth.input / synth.param arguments, e.g. from
                    synth-bench-attention --emit-ir); the shape flags do not apply to it
  -o FILE           the schedule file to write (docs/schedules.md; apply it with synthc --schedule=FILE --cpu=host)
  --entry=E         the entry point to time (default forward; gradients and train_step build the training functions)
  --budget=SECONDS  search time, compiles included (default 300); the default and the autoschedulers come first
  --reps=R          timed runs per candidate after one checked run (default 5, and at least 0.2 s of runs);
                    times are medians
  --threads=T       Halide threads (default: one per CPU)
  --seed=S          the search's random seed and the inputs' (default 1)
  --autoschedulers=LIST  Halide autoschedulers measured as baselines and as candidates: a comma list of
                    adams2019, li2018, mullapudi2016, or none (default all three)
  --cache=DIR       measurements and finished runs (default $XDG_CACHE_HOME/synth-tune or ~/.cache/synth-tune)
  --report=DIR      where report.md and candidates.svg go (default FILE.report next to -o)
)";

struct Options {
  std::string model, output, entry = "forward", cache, report;
  synth::ShapeOptions shapes;
  double budget = 300;
  int reps = 5, threads = -1;
  uint64_t seed = 1;
  std::vector<std::string> autoschedulers = sched::autoschedulers();
};

int usageError(const std::string &message) {
  std::cerr << "synth-tune: " << message << "\n" << kUsage;
  return 2;
}

int fail(const std::string &message) {
  std::cerr << "synth-tune: error: " << message << "\n";
  return 1;
}

std::optional<int64_t> parseInt(const std::string &text, int64_t min,
                                int64_t max) {
  if (text.empty() || text.size() > 15) {
    return std::nullopt;
  }
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

int parseOptions(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string &flag) -> std::optional<std::string> {
      if (arg.rfind(flag + "=", 0) == 0) {
        return arg.substr(flag.size() + 1);
      }
      if (arg == flag && i + 1 < argc) {
        return std::string(argv[++i]);
      }
      return std::nullopt;
    };
    auto integer = [&](const std::string &flag, const std::string &text,
                       int64_t min, int64_t max, auto &out) -> int {
      std::optional<int64_t> v = parseInt(text, min, max);
      if (!v) {
        return usageError(absl::StrCat(flag, " expects an integer in [", min,
                                       ", ", max, "], got \"", text, "\""));
      }
      out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
      return 0;
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (arg == "-o") {
      if (i + 1 >= argc) {
        return usageError("-o needs a file name");
      }
      o.output = argv[++i];
    } else if (auto v = value("--entry")) {
      if (*v != "forward" && *v != "loss" && *v != "gradients" &&
          *v != "train_step") {
        return usageError("unknown --entry=" + *v +
                          " (expected forward, loss, gradients or train_step)");
      }
      o.entry = *v;
    } else if (auto v = value("--batch")) {
      if (int c = integer("--batch", *v, 1, 1 << 20, o.shapes.batch)) {
        return c;
      }
    } else if (auto v = value("--seq-len")) {
      if (int c = integer("--seq-len", *v, 1, 1 << 20, o.shapes.seqLen)) {
        return c;
      }
    } else if (auto v = value("--src-len")) {
      if (int c = integer("--src-len", *v, 1, 1 << 20, o.shapes.srcLen)) {
        return c;
      }
    } else if (auto v = value("--tgt-len")) {
      if (int c = integer("--tgt-len", *v, 1, 1 << 20, o.shapes.tgtLen)) {
        return c;
      }
    } else if (auto v = value("--budget")) {
      int64_t seconds = 0;
      if (int c = integer("--budget", *v, 1, 7 * 24 * 3600, seconds)) {
        return c;
      }
      o.budget = static_cast<double>(seconds);
    } else if (auto v = value("--reps")) {
      if (int c = integer("--reps", *v, 1, 1000, o.reps)) {
        return c;
      }
    } else if (auto v = value("--threads")) {
      if (int c = integer("--threads", *v, 1, 4096, o.threads)) {
        return c;
      }
    } else if (auto v = value("--seed")) {
      if (int c = integer("--seed", *v, 0, int64_t{1} << 53, o.seed)) {
        return c;
      }
    } else if (auto v = value("--autoschedulers")) {
      o.autoschedulers.clear();
      if (*v != "none") {
        for (absl::string_view part : absl::StrSplit(*v, ',')) {
          std::string name(part);
          if (!sched::isAutoscheduler(name)) {
            return usageError("unknown autoscheduler \"" + name +
                              "\" in --autoschedulers (expected adams2019, "
                              "li2018, mullapudi2016 or none)");
          }
          if (std::find(o.autoschedulers.begin(), o.autoschedulers.end(),
                        name) == o.autoschedulers.end()) {
            o.autoschedulers.push_back(name);
          }
        }
      }
    } else if (auto v = value("--cache")) {
      o.cache = *v;
    } else if (auto v = value("--report")) {
      o.report = *v;
    } else if (!arg.empty() && arg[0] == '-') {
      return usageError("unknown flag " + arg);
    } else if (o.model.empty()) {
      o.model = arg;
    } else {
      return usageError("more than one model: " + o.model + " and " + arg);
    }
  }
  if (o.model.empty()) {
    return usageError("needs a model description");
  }
  if (o.output.empty()) {
    return usageError("needs -o FILE (the schedule file to write)");
  }
  if (o.cache.empty()) {
    const char *xdg = std::getenv("XDG_CACHE_HOME");
    const char *home = std::getenv("HOME");
    o.cache = xdg && *xdg ? (fs::path(xdg) / "synth-tune").string()
              : home && *home
                  ? (fs::path(home) / ".cache" / "synth-tune").string()
                  : (fs::temp_directory_path() / "synth-tune").string();
  }
  if (o.report.empty()) {
    o.report = o.output + ".report";
  }
  return 0;
}

//===----------------------------------------------------------------------===//
// Candidates and their measurement
//===----------------------------------------------------------------------===//

/// One kernel's candidate: an explicit schedule or an autoscheduler.
struct Candidate {
  std::string scheduler; // "" for the explicit schedule
  sched::Schedule schedule;
};

/// A schedule file giving each kernel its candidate on target class `cls`.
json::Value scheduleFile(const std::map<std::string, Candidate> &candidates,
                         const std::string &cls, const std::string &note) {
  json::Value kernels = json::Value::array();
  for (const auto &[name, c] : candidates) {
    json::Value entry = json::Value::object();
    entry.set("name", json::Value::string(name));
    if (!c.scheduler.empty()) {
      entry.set("scheduler", json::Value::string(c.scheduler));
    } else {
      json::Value schedule = json::Value::object();
      schedule.set(cls, synth::cpu::fieldsToJson(c.schedule));
      entry.set("schedule", std::move(schedule));
    }
    kernels.push(std::move(entry));
  }
  json::Value file = json::Value::object();
  file.set("format", json::Value::string(synth::cpu::kScheduleFormat));
  file.set("version", json::Value::integer(synth::cpu::kScheduleVersion));
  if (!note.empty()) {
    file.set("note", json::Value::string(note));
  }
  file.set("kernels", std::move(kernels));
  return file;
}

struct Measurement {
  bool ok = false;
  std::string problem; // why not ok
  std::map<std::string, double> kernelMs;
  double totalMs = 0;
  /// Kernels whose autoscheduler gave up (they kept the explicit schedule).
  std::set<std::string> fellBack;
};

json::Value toJson(const Measurement &m) {
  json::Value v = json::Value::object();
  v.set("ok", json::Value::boolean(m.ok));
  v.set("problem", json::Value::string(m.problem));
  json::Value kernels = json::Value::object();
  for (const auto &[k, t] : m.kernelMs) {
    kernels.set(k, json::Value::number(t));
  }
  v.set("kernel_ms", std::move(kernels));
  v.set("total_ms", json::Value::number(m.totalMs));
  json::Value fell = json::Value::array();
  for (const std::string &k : m.fellBack) {
    fell.push(json::Value::string(k));
  }
  v.set("fell_back", std::move(fell));
  return v;
}

std::optional<Measurement> fromJson(const json::Value &v) {
  const json::Value *ok = v.find("ok"), *problem = v.find("problem"),
                    *kernels = v.find("kernel_ms"), *total = v.find("total_ms"),
                    *fell = v.find("fell_back");
  if (!ok || !ok->isBool() || !problem || !problem->isString() || !kernels ||
      !kernels->isObject() || !total || !total->isNumber() || !fell ||
      !fell->isArray()) {
    return std::nullopt;
  }
  Measurement m;
  m.ok = ok->asBool();
  m.problem = problem->asString();
  for (const auto &[k, t] : kernels->members()) {
    if (!t.isNumber()) {
      return std::nullopt;
    }
    m.kernelMs[k] = t.asDouble();
  }
  m.totalMs = total->asDouble();
  for (const json::Value &k : fell->items()) {
    if (!k.isString()) {
      return std::nullopt;
    }
    m.fellBack.insert(k.asString());
  }
  return m;
}

double median(std::vector<double> v) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Outputs of a run, as float64 (integers exactly) for the check.
using Outputs = std::map<std::string, std::vector<double>>;

std::vector<double> asDoubles(const rt::TensorView &view) {
  std::vector<double> out;
  size_t n = 1;
  for (int64_t d : *view.shape) {
    n *= static_cast<size_t>(d);
  }
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    switch (view.dtype) {
    case synth::DType::F32:
      out.push_back(static_cast<const float *>(view.data)[i]);
      break;
    case synth::DType::I32:
      out.push_back(static_cast<const int32_t *>(view.data)[i]);
      break;
    default:
      out.push_back(static_cast<const uint8_t *>(view.data)[i]);
      break;
    }
  }
  return out;
}

/// What is wrong with `got` against the default's outputs, or "".
std::string compareOutputs(const Outputs &got, const Outputs &want) {
  for (const auto &[name, w] : want) {
    auto it = got.find(name);
    if (it == got.end() || it->second.size() != w.size()) {
      return absl::StrCat("output ", name, " is missing or has another size");
    }
    double diff = 0, norm = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      double g = it->second[i];
      if (std::isnan(g) && !std::isnan(w[i])) {
        return absl::StrCat("output ", name, " has NaN at element ", i);
      }
      diff += (g - w[i]) * (g - w[i]);
      norm += w[i] * w[i];
    }
    double rel = std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
    if (!(rel <= 1e-4)) {
      return absl::StrFormat("output %s differs from the default schedule's by "
                             "%.3g (normwise relative; at most 1e-4)",
                             name, rel);
    }
  }
  return "";
}

class Tuner {
public:
  Tuner(const Options &options, mlir::ModuleOp base,
        const std::vector<synth::ParamInfo> &table, uint64_t weightSeed,
        const json::Value &model, std::string keyBase, std::string cls)
      : o_(options), base_(base), table_(table), weightSeed_(weightSeed),
        model_(model), keyBase_(std::move(keyBase)), cls_(std::move(cls)) {}

  /// Compiles the candidates (missing kernels keep their defaults), runs the
  /// entry and checks it against `reference` (when given; else records the
  /// outputs into it). Cached.
  absl::StatusOr<Measurement>
  measure(const std::map<std::string, Candidate> &candidates,
          Outputs *reference, bool *cached) {
    json::Value file = scheduleFile(candidates, cls_, "");
    std::string key =
        synth::sha256Hex(absl::StrCat(keyBase_, "\n", json::serialize(file)));
    fs::path cachePath = fs::path(o_.cache) / "measurements" / (key + ".json");
    *cached = false;
    if (reference && !reference->empty()) {
      if (absl::StatusOr<std::string> text =
              synth::readFileBytes(cachePath.string());
          text.ok()) {
        if (absl::StatusOr<json::Value> v = json::parse(*text); v.ok()) {
          if (std::optional<Measurement> m = fromJson(*v)) {
            *cached = true;
            return *m;
          }
        }
      }
    }
    Measurement m;
    mlir::OwningOpRef<mlir::ModuleOp> module = base_.clone();
    if (absl::Status s =
            synth::cpu::applySchedules(*module, file, "<candidates>");
        !s.ok()) {
      return s;
    }
    fs::path dir = fs::path(o_.cache) / "work" / key;
    synth::cpu::CpuArtifactOptions artifactOptions;
    artifactOptions.output = dir.string();
    artifactOptions.hostOnly = true;
    artifactOptions.model = model_;
    std::vector<std::string> notes;
    artifactOptions.notes = &notes;
    if (absl::Status s = synth::cpu::writeCpuArtifact(
            *module, table_, weightSeed_, artifactOptions);
        !s.ok()) {
      return s;
    }
    for (const auto &[name, c] : candidates) {
      for (const std::string &note : notes) {
        if (!c.scheduler.empty() &&
            note.rfind(absl::StrCat("kernel ", name, ":"), 0) == 0) {
          m.fellBack.insert(name);
        }
      }
    }
    absl::Status run = runAndTime(dir.string(), reference, m);
    std::error_code error;
    fs::remove_all(dir, error);
    if (!run.ok()) {
      return run;
    }
    fs::create_directories(cachePath.parent_path(), error);
    (void)synth::writeFileAtomic(cachePath.string(),
                                 json::serialize(toJson(m), true));
    return m;
  }

private:
  absl::Status runAndTime(const std::string &dir, Outputs *reference,
                          Measurement &m) {
    absl::StatusOr<std::unique_ptr<rt::Artifact>> artifact =
        rt::Artifact::load(dir);
    if (!artifact.ok()) {
      return artifact.status();
    }
    if (o_.threads > 0) {
      if (absl::StatusOr<int> s = (*artifact)->setNumThreads(o_.threads);
          !s.ok()) {
        return s.status();
      }
    }
    absl::StatusOr<std::unique_ptr<rt::Session>> session =
        rt::Session::create(**artifact, o_.entry);
    if (!session.ok()) {
      return session.status();
    }
    const rt::EntryInfo &plan = (*session)->entry();
    if (absl::Status s = setInputs(**session, (*artifact)->manifest());
        !s.ok()) {
      return s;
    }
    // One checked run: the entry's outputs (and, for a training step, the
    // updated parameters) against the default schedule's.
    if (absl::Status s = (*session)->run(); !s.ok()) {
      return s;
    }
    Outputs outputs;
    for (const rt::Binding &out : plan.outputs) {
      absl::StatusOr<rt::TensorView> view = (*session)->outputView(out.name);
      if (!view.ok()) {
        return view.status();
      }
      outputs[out.name] = asDoubles(*view);
    }
    if (rt::updatesParameters(plan)) {
      for (const auto &[name, tensor] : (*session)->weights()->tensors) {
        rt::TensorView view{tensor.dtype, &tensor.shape, tensor.bytes.data(),
                            tensor.bytes.size()};
        outputs["parameter " + name] = asDoubles(view);
      }
    }
    if (reference->empty()) {
      *reference = outputs;
      m.ok = true;
    } else {
      m.problem = compareOutputs(outputs, *reference);
      m.ok = m.problem.empty();
    }
    std::vector<double> seconds;
    rt::RunOptions runOptions;
    runOptions.callSeconds = &seconds;
    runOptions.poisonOutputs = false;
    std::map<std::string, std::vector<double>> perKernel;
    std::vector<double> totals;
    // At least --reps runs and at least 0.2 s of them, so that kernels of a
    // few microseconds get enough samples for a stable median.
    auto timingStart = Clock::now();
    for (int rep = 0;
         rep < o_.reps ||
         (rep < 10000 &&
          std::chrono::duration<double>(Clock::now() - timingStart).count() <
              0.2);
         ++rep) {
      if (absl::Status s = (*session)->run(runOptions); !s.ok()) {
        return s;
      }
      std::map<std::string, double> sum;
      double total = 0;
      for (size_t c = 0; c < plan.calls.size(); ++c) {
        sum[plan.calls[c].kernel] += seconds[c] * 1e3;
        total += seconds[c] * 1e3;
      }
      for (const auto &[k, t] : sum) {
        perKernel[k].push_back(t);
      }
      totals.push_back(total);
    }
    for (const auto &[k, times] : perKernel) {
      m.kernelMs[k] = median(times);
    }
    m.totalMs = median(totals);
    return absl::OkStatus();
  }

  /// Seeded inputs: token ids below the smallest embedding's rows, class
  /// labels 0 or 1, masks all ones, step 1 of 1000, floats N(0, 1).
  absl::Status setInputs(rt::Session &session, const rt::Manifest &manifest) {
    int64_t vocab = 0;
    for (const rt::ParameterInfo &p : manifest.parameters) {
      if (p.name.find("embed") != std::string::npos && !p.shape.empty()) {
        vocab = vocab ? std::min(vocab, p.shape[0]) : p.shape[0];
      }
    }
    std::mt19937_64 rng(o_.seed);
    const rt::EntryInfo &plan = session.entry();
    for (const rt::Binding &input : plan.inputs) {
      const rt::BufferInfo &buffer = plan.buffers[input.buffer];
      synth::Tensor t = synth::Tensor::zeros(buffer.dtype, buffer.shape);
      int64_t n = t.numel();
      if (buffer.dtype == synth::DType::U8) {
        std::fill(t.bytes.begin(), t.bytes.end(), 1);
      } else if (buffer.dtype == synth::DType::I32) {
        int32_t *d = t.data<int32_t>();
        if (input.name == "step") {
          d[0] = 1;
        } else if (input.name == "total_steps") {
          d[0] = 1000;
        } else {
          bool labels = input.name.find("label") != std::string::npos;
          int64_t range = labels ? 2 : std::max<int64_t>(vocab, 1);
          std::uniform_int_distribution<int64_t> id(0, range - 1);
          for (int64_t i = 0; i < n; ++i) {
            d[i] = static_cast<int32_t>(id(rng));
          }
        }
      } else if (buffer.dtype == synth::DType::F32) {
        std::normal_distribution<float> normal(0.0f, 1.0f);
        float *d = t.data<float>();
        for (int64_t i = 0; i < n; ++i) {
          d[i] = normal(rng);
        }
      }
      if (absl::Status s = session.setInput(input.name, t); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  const Options &o_;
  mlir::ModuleOp base_;
  const std::vector<synth::ParamInfo> &table_;
  uint64_t weightSeed_;
  const json::Value &model_;
  std::string keyBase_;
  std::string cls_;
};

/// A one-line progress bar on stderr.
class Progress {
public:
  explicit Progress(double budget)
      : budget_(budget), tty_(isatty(2)), start_(Clock::now()) {}
  double elapsed() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }
  void show(const std::string &what) {
    double fraction = std::clamp(elapsed() / budget_, 0.0, 1.0);
    int filled = static_cast<int>(fraction * 30);
    std::string bar = std::string(filled, '#') + std::string(30 - filled, '.');
    std::string line =
        absl::StrFormat("[%s] %3.0f%% %5.0fs of %.0fs  %s", bar, fraction * 100,
                        elapsed(), budget_, what);
    if (tty_) {
      std::fprintf(stderr, "\r%-110s", line.substr(0, 110).c_str());
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }
  void done() {
    if (tty_) {
      std::fprintf(stderr, "\n");
    }
  }

private:
  double budget_;
  bool tty_;
  Clock::time_point start_;
};

std::string cpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        return line.substr(line.find_first_not_of(' ', colon + 1));
      }
    }
  }
  return "unknown CPU";
}

int copyFile(const fs::path &from, const fs::path &to) {
  absl::StatusOr<std::string> bytes = synth::readFileBytes(from.string());
  if (!bytes.ok()) {
    return fail(std::string(bytes.status().message()));
  }
  std::error_code error;
  if (to.has_parent_path()) {
    fs::create_directories(to.parent_path(), error);
  }
  if (absl::Status s = synth::writeFileAtomic(to.string(), *bytes); !s.ok()) {
    return fail(std::string(s.message()));
  }
  return 0;
}

/// What built the measurements: a hash of this executable and of the
/// project's libraries it loaded (the compiler, the back end, the runtime),
/// so that a rebuilt compiler never reuses an older build's times.
std::string compilerIdentity() {
  std::vector<std::string> files = {"/proc/self/exe"};
  dl_iterate_phdr(
      [](struct dl_phdr_info *info, size_t, void *data) {
        std::string path = info->dlpi_name ? info->dlpi_name : "";
        std::string base = fs::path(path).filename().string();
        if (base.rfind("libSynth", 0) == 0 ||
            base.rfind("libsynthrt", 0) == 0) {
          static_cast<std::vector<std::string> *>(data)->push_back(path);
        }
        return 0;
      },
      &files);
  std::string identity;
  for (const std::string &file : files) {
    absl::StatusOr<std::string> digest = synth::sha256File(file);
    absl::StrAppend(&identity, file, " ", digest.ok() ? *digest : "?", "\n");
  }
  return synth::sha256Hex(identity);
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  if (int code = parseOptions(argc, argv, o)) {
    return code;
  }
  absl::StatusOr<std::string> modelText = synth::readFileBytes(o.model);
  if (!modelText.ok()) {
    return fail(std::string(modelText.status().message()));
  }
  // The input: a model description, or synth IR (a .mlir file whose
  // functions take `synth.input` and `synth.param` arguments, such as
  // `synth-bench-attention --emit-ir` writes).
  const bool isIr = fs::path(o.model).extension() == ".mlir";
  std::string target = synth::cpu::hostTarget();
  std::string cls = sched::isaOfHalideTarget(target).name;
  mlir::DialectRegistry registry;
  registry.insert<mlir::synth::SynthDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect>();
  mlir::MLIRContext context(registry);
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::vector<synth::ParamInfo> table;
  uint64_t weightSeed = 0;
  json::Value description = json::Value::object();
  if (isIr) {
    llvm::SourceMgr sourceMgr;
    mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
    sourceMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(*modelText, o.model),
        llvm::SMLoc());
    module = mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
    if (!module) {
      return fail(o.model + ": not valid synth IR (see above)");
    }
    description.set("ir", json::Value::string(o.model));
    // Parameters: the `synth.param` arguments of the timed entry, frozen
    // (their values are seeded, like synth-bench-attention's).
    if (auto f = module->lookupSymbol<mlir::func::FuncOp>(o.entry)) {
      for (unsigned i = 0; i < f.getNumArguments(); ++i) {
        auto name = f.getArgAttrOfType<mlir::StringAttr>(i, "synth.param");
        auto type =
            mlir::dyn_cast<mlir::RankedTensorType>(f.getArgument(i).getType());
        if (name && type) {
          table.push_back({name.str(),
                           std::vector<int64_t>(type.getShape().begin(),
                                                type.getShape().end()),
                           /*trainable=*/false, synth::InitKind::Uniform, 0.1});
        }
      }
    }
  } else {
    absl::StatusOr<json::Value> parsed = json::parse(*modelText, o.model);
    if (!parsed.ok()) {
      return fail(std::string(parsed.status().message()));
    }
    description = *parsed;
    absl::StatusOr<synth::ModelConfig> config = synth::loadModelConfig(o.model);
    if (!config.ok()) {
      return fail(std::string(config.status().message()));
    }
    table = synth::parameterTable(*config);
    weightSeed = config->seed;
    // The kernels, as synthc --cpu=host builds them, of the timed entry.
    auto built = synth::buildModelModule(context, *config, o.shapes);
    if (!built.ok()) {
      return fail(o.model + ": " + std::string(built.status().message()));
    }
    module = std::move(*built);
  }
  mlir::synth::TrainingPipelineOptions training;
  training.gradients = o.entry == "gradients";
  training.trainStep = o.entry == "train_step";
  {
    mlir::PassManager pm(&context);
    mlir::synth::buildCpuKernelPipeline(pm, training, {cls});
    if (mlir::failed(pm.run(*module))) {
      return fail(o.model + ": the CPU kernel pipeline failed");
    }
  }
  std::vector<mlir::func::FuncOp> others;
  mlir::func::FuncOp entryFunc;
  for (mlir::func::FuncOp f : module->getOps<mlir::func::FuncOp>()) {
    if (f.getSymName() == o.entry) {
      entryFunc = f;
    } else {
      others.push_back(f);
    }
  }
  if (!entryFunc) {
    return fail(absl::StrCat(o.model, " has no entry '", o.entry, "'"));
  }
  for (mlir::func::FuncOp f : others) {
    f.erase();
  }
  std::vector<tune::KernelSpace> spaces;
  std::map<std::string, sched::Schedule> defaults;
  std::map<std::string, std::string> kinds;
  for (auto kernel : entryFunc.getOps<mlir::synth::KernelOp>()) {
    std::string name = kernel.getKernelName().str();
    sched::KernelTraits traits = mlir::synth::kernelTraits(kernel);
    mlir::DictionaryAttr fields = kernel.getScheduleAttr().getTarget(cls);
    sched::Schedule s = mlir::synth::scheduleFromAttr(fields);
    defaults[name] = s;
    kinds[name] = sched::kernelKind(traits);
    spaces.push_back(
        tune::spaceOf(name, traits, *sched::findIsa(cls), defaults[name]));
  }

  // What every measurement depends on, and what the whole run does.
  std::string keyBase = absl::StrCat(
      kCacheVersion, " ", compilerIdentity(), "\n", *modelText, "\nentry ",
      o.entry, " batch ", o.shapes.batch, " seq ", o.shapes.seqLen, " src ",
      o.shapes.srcLen, " tgt ", o.shapes.tgtLen, "\ntarget ", target, "\nreps ",
      o.reps, " threads ", o.threads, " seed ", o.seed);
  std::string runKey = synth::sha256Hex(
      absl::StrCat(keyBase, "\nbudget ", o.budget, "\nautoschedulers ",
                   absl::StrJoin(o.autoschedulers, ",")));
  fs::path runDir = fs::path(o.cache) / "runs" / runKey;
  std::error_code error;
  if (fs::exists(runDir / "tuned.json", error) &&
      fs::exists(runDir / "report.md", error) &&
      fs::exists(runDir / "candidates.svg", error)) {
    if (int c = copyFile(runDir / "tuned.json", o.output)) {
      return c;
    }
    if (int c =
            copyFile(runDir / "report.md", fs::path(o.report) / "report.md")) {
      return c;
    }
    if (int c = copyFile(runDir / "candidates.svg",
                         fs::path(o.report) / "candidates.svg")) {
      return c;
    }
    std::fprintf(stderr,
                 "synth-tune: this run is in the cache (%s): wrote %s and %s "
                 "without compiling\n",
                 runDir.string().c_str(), o.output.c_str(), o.report.c_str());
    return 0;
  }

  Tuner tuner(o, *module, table, weightSeed, description, keyBase, cls);
  Progress progress(o.budget);
  Outputs reference;
  tune::RunSummary summary;
  summary.autoschedulers = o.autoschedulers;
  std::map<std::string, tune::KernelResult> results;
  std::map<std::string, Candidate> best;
  for (const auto &[name, s] : defaults) {
    results[name].kernel = name;
    results[name].kind = kinds[name];
    best[name] = Candidate{"", s};
  }
  int compiles = 0, hits = 0;
  auto account = [&](bool cached) { cached ? ++hits : ++compiles; };

  // 1. The default schedules: the reference outputs and times.
  progress.show("default schedules");
  bool cached = false;
  absl::StatusOr<Measurement> base = tuner.measure({}, &reference, &cached);
  if (!base.ok()) {
    progress.done();
    return fail("the default schedules: " +
                std::string(base.status().message()));
  }
  account(cached);
  summary.defaultTotalMs = base->totalMs;
  for (auto &[name, r] : results) {
    r.defaultMs = base->kernelMs[name];
    r.bestMs = r.defaultMs;
    r.bestFrom = "default";
  }

  // 2. The autoschedulers, each for every kernel at once.
  for (const std::string &a : o.autoschedulers) {
    progress.show("autoscheduler " + a);
    std::map<std::string, Candidate> all;
    for (const auto &[name, s] : defaults) {
      all[name] = Candidate{a, s};
    }
    absl::StatusOr<Measurement> m = tuner.measure(all, &reference, &cached);
    if (!m.ok()) {
      summary.notes.push_back(
          absl::StrCat(a, " failed: ", m.status().message()));
      continue;
    }
    account(cached);
    if (!m->ok) {
      summary.notes.push_back(
          absl::StrCat(a, "'s outputs were rejected: ", m->problem));
      continue;
    }
    summary.autoschedulerTotalMs[a] = m->totalMs;
    for (auto &[name, r] : results) {
      bool gaveUp = m->fellBack.count(name) > 0;
      r.autoschedulerMs[a] = gaveUp ? -1 : m->kernelMs[name];
      if (!gaveUp && m->kernelMs[name] > 0 && m->kernelMs[name] < r.bestMs) {
        r.bestMs = m->kernelMs[name];
        r.bestFrom = a;
        best[name] = Candidate{a, defaults[name]};
      }
    }
  }

  // 3. The search: rounds of one candidate per kernel.
  std::mt19937_64 rng(o.seed);
  std::map<std::string, std::set<std::string>> tried;
  for (const auto &[name, s] : defaults) {
    tried[name].insert(json::serialize(synth::cpu::fieldsToJson(s)));
  }
  std::map<std::string, sched::Schedule> bestExplicit = defaults;
  std::map<std::string, double> bestExplicitMs;
  for (const auto &[name, r] : results) {
    bestExplicitMs[name] = r.defaultMs;
  }
  const int randomRounds = 3;
  double lastRound = 0;
  while (progress.elapsed() + lastRound < o.budget || summary.rounds == 0) {
    std::map<std::string, Candidate> round;
    for (const tune::KernelSpace &space : spaces) {
      for (int attempt = 0; attempt < 20; ++attempt) {
        bool explore = summary.rounds < randomRounds ||
                       std::bernoulli_distribution(0.25)(rng);
        std::optional<sched::Schedule> s =
            explore ? tune::randomPoint(space, rng)
                    : tune::neighbour(space, bestExplicit[space.kernel], rng);
        if (!s) {
          continue;
        }
        std::string text = json::serialize(synth::cpu::fieldsToJson(*s));
        if (tried[space.kernel].insert(text).second) {
          round[space.kernel] = Candidate{"", *s};
          break;
        }
      }
    }
    if (round.empty()) {
      break; // every space is exhausted
    }
    ++summary.rounds;
    double start = progress.elapsed();
    double speedup = 0;
    for (const auto &[name, r] : results) {
      speedup += r.bestMs;
    }
    progress.show(absl::StrFormat(
        "round %d: %zu kernels, best so far %.2fx of default, %d compiled, "
        "%d cached",
        summary.rounds, round.size(),
        speedup > 0 ? summary.defaultTotalMs / speedup : 0.0, compiles, hits));
    // A rejected set is split in halves until the candidates at fault are
    // alone: the others still count, and the faulty ones are reported.
    std::vector<std::map<std::string, Candidate>> pending = {round};
    bool rejected = false;
    while (!pending.empty()) {
      std::map<std::string, Candidate> set = std::move(pending.back());
      pending.pop_back();
      absl::StatusOr<Measurement> m = tuner.measure(set, &reference, &cached);
      if (m.ok()) {
        account(cached);
      }
      if (!m.ok() || !m->ok) {
        rejected = true;
        if (set.size() > 1) {
          std::map<std::string, Candidate> half;
          auto it = set.begin();
          for (size_t i = 0; i < set.size() / 2; ++i, ++it) {
            half.insert(*it);
          }
          pending.push_back(std::map<std::string, Candidate>(it, set.end()));
          pending.push_back(std::move(half));
          continue;
        }
        const auto &[name, c] = *set.begin();
        ++results[name].rejected;
        summary.notes.push_back(absl::StrCat(
            "round ", summary.rounds, ": kernel ", name, " with ",
            json::serialize(synth::cpu::fieldsToJson(c.schedule)), " ",
            m.ok() ? "was rejected: " + m->problem
                   : "failed: " + std::string(m.status().message())));
        continue;
      }
      for (const auto &[name, c] : set) {
        double t = m->kernelMs[name];
        tune::KernelResult &r = results[name];
        r.candidateMs.push_back(t);
        if (t > 0 && t < bestExplicitMs[name]) {
          bestExplicitMs[name] = t;
          bestExplicit[name] = c.schedule;
        }
        if (t > 0 && t < r.bestMs) {
          r.bestMs = t;
          r.bestFrom = "search";
          best[name] = c;
        }
      }
    }
    summary.rejectedRounds += rejected ? 1 : 0;
    lastRound = progress.elapsed() - start;
  }

  // 4. The chosen schedules, built and timed together.
  progress.show("the tuned schedule file");
  absl::StatusOr<Measurement> tuned = tuner.measure(best, &reference, &cached);
  progress.done();
  if (!tuned.ok()) {
    return fail("the tuned schedules: " +
                std::string(tuned.status().message()));
  }
  account(cached);
  if (!tuned->ok) {
    return fail("the tuned schedules' outputs were rejected: " +
                tuned->problem);
  }
  summary.tunedTotalMs = tuned->totalMs;

  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string shapes =
      isIr ? std::string("shapes as written in the IR")
           : absl::StrCat("batch ", o.shapes.batch, ", sequence length ",
                          o.shapes.seqLen ? std::to_string(o.shapes.seqLen)
                                          : std::string("max_len"));
  summary.header = absl::StrFormat(
      "%s `%s`, entry `%s`, %s; CPU %s "
      "(%u hardware threads), Halide target `%s`; %s threads; budget %.0f s, "
      "%d timed runs per candidate, seed %d; %s.",
      isIr ? "Kernels" : "Model", o.model, o.entry, shapes, cpuName(),
      std::thread::hardware_concurrency(), target,
      o.threads > 0 ? std::to_string(o.threads) : "Halide's default", o.budget,
      o.reps, o.seed, date);
  std::vector<tune::KernelResult> ordered;
  for (const auto &[name, r] : results) {
    ordered.push_back(r);
  }
  std::sort(ordered.begin(), ordered.end(),
            [](const tune::KernelResult &a, const tune::KernelResult &b) {
              return a.defaultMs > b.defaultMs;
            });
  std::string note = absl::StrCat(
      "synth-tune: ", o.model, ", entry ", o.entry, ", batch ", o.shapes.batch,
      ", seq-len ", o.shapes.seqLen, ", ", cpuName(), ", ", target, ", ", date,
      absl::StrFormat(": %.3f ms per run against %.3f ms with the defaults",
                      summary.tunedTotalMs, summary.defaultTotalMs));
  std::string fileText =
      json::serialize(scheduleFile(best, cls, note), true) + "\n";
  std::string report = tune::markdownReport(summary, ordered);
  std::string svg = tune::svgPlot(summary, ordered);
  fs::create_directories(runDir, error);
  fs::create_directories(o.report, error);
  for (const auto &[path, text] : std::vector<std::pair<fs::path, std::string>>{
           {o.output, fileText},
           {fs::path(o.report) / "report.md", report},
           {fs::path(o.report) / "candidates.svg", svg},
           {runDir / "tuned.json", fileText},
           {runDir / "report.md", report},
           {runDir / "candidates.svg", svg}}) {
    if (absl::Status s = synth::writeFileAtomic(path.string(), text); !s.ok()) {
      return fail(std::string(s.message()));
    }
  }
  std::printf("%s", report.c_str());
  std::fprintf(stderr,
               "synth-tune: wrote %s (%.3f ms per run, %.2fx the defaults' "
               "%.3f ms) and %s/; %d builds compiled, %d from the cache\n",
               o.output.c_str(), summary.tunedTotalMs,
               summary.tunedTotalMs > 0
                   ? summary.defaultTotalMs / summary.tunedTotalMs
                   : 0.0,
               summary.defaultTotalMs, o.report.c_str(), compiles, hits);
  return 0;
}
