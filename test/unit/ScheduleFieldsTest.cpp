//===- ScheduleFieldsTest.cpp - every schedule field reaches the code -----===//
//
// The CPU back end must take every decision from the schedule: for two tiny
// trained language models (dot attention, and trainable random attention,
// whose gradients reduce over the batch), each field of each kernel kind,
// changed on its own to another valid value, must change the kernel's
// lowered Halide statement on some kernel of that kind. A field that no
// kernel's statement depends on is reported by name. The kernels of unfused
// attention (synthc --no-fuse=attention: each score op, the mixture and
// attend) are checked per op: every field of each changes its statement.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/HalideKernels.h"
#include "codegen/cpu/KernelSpecFromIR.h"
#include "frontend/ModelBuilder.h"
#include "frontend/ModelConfig.h"
#include "passes/CpuSchedule.h"
#include "passes/Passes.h"

#include "dialect/SynthOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

#include "gtest/gtest.h"

#include <map>
#include <set>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace sched = synth::sched;

/// Other values of `field` than `current`, nearest first (a tile larger
/// than its loop is clamped to it, so smaller ones come first).
std::vector<sched::FieldValue> alternatives(const sched::FieldDef &field,
                                            const sched::FieldValue &current) {
  std::vector<sched::FieldValue> values;
  if (!field.choices.empty()) {
    for (const std::string &c : field.choices) {
      if (c != std::get<std::string>(current)) {
        values.push_back(c);
      }
    }
    return values;
  }
  int64_t v = std::get<int64_t>(current);
  for (int64_t a : {v / 2, v / 4, v * 2}) {
    if (a >= std::max<int64_t>(field.min, 1) && a <= field.max && a != v) {
      values.push_back(a);
    }
  }
  return values;
}

/// The kernel's lowered statement, lowered in a child process: Halide names
/// temporaries and repeated Funcs from process-wide counters, so two
/// lowerings in one process differ in names (and in the operand order that
/// names decide). Every child starts from the same state.
std::string lowered(const synth::cpu::KernelSpec &spec) {
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return "";
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    absl::StatusOr<std::string> text = synth::cpu::loweredStatement(
        spec, synth::cpu::portableTargets().front());
    std::string out =
        text.ok() ? *text : "error: " + std::string(text.status().message());
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) {
        _exit(1);
      }
      done += static_cast<size_t>(n);
    }
    _exit(text.ok() ? 0 : 1);
  }
  close(fds[1]);
  std::string text;
  char buffer[65536];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) {
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << spec.name << ": " << text;
  return text;
}

/// The ops whose kernels are checked one by one (the key is the op, not
/// the kernel's kind): unfused attention.
bool checkedPerOp(const std::string &anchor) {
  const std::string suffix = "_scores"; // dot_scores, ..., mixture_scores
  return anchor == "attend" || (anchor.size() > suffix.size() &&
                                anchor.compare(anchor.size() - suffix.size(),
                                               suffix.size(), suffix) == 0);
}

void checkEveryField(const std::string &description,
                     std::set<std::string> &uncovered,
                     std::set<std::string> &covered,
                     const mlir::synth::FusionOptions &fusion = {}) {
  mlir::MLIRContext context;
  // The tests fork: no thread pool in the parent.
  context.disableMultithreading();
  absl::StatusOr<synth::ModelConfig> config =
      synth::parseModelConfig(description, "<test model>");
  ASSERT_TRUE(config.ok()) << config.status().message();
  synth::ShapeOptions shapes;
  shapes.batch = 2;
  auto module = synth::buildModelModule(context, *config, shapes);
  ASSERT_TRUE(module.ok()) << module.status().message();
  mlir::PassManager pm(&context);
  mlir::synth::TrainingPipelineOptions training;
  // The backward pass differentiates fused attention only.
  training.trainStep = fusion.attention;
  mlir::synth::buildCpuKernelPipeline(pm, training, {"avx512"}, fusion);
  ASSERT_TRUE(mlir::succeeded(pm.run(**module)));

  std::vector<synth::cpu::KernelSpec> specs;
  (**module)->walk([&](mlir::synth::KernelOp kernel) {
    absl::StatusOr<synth::cpu::KernelSpec> spec =
        synth::cpu::describeKernel(kernel);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    specs.push_back(*spec);
  });
  ASSERT_FALSE(specs.empty());
  // Lowering is deterministic: the comparison below means something.
  ASSERT_EQ(lowered(specs.front()), lowered(specs.front()));

  const sched::Isa &isa = *sched::findIsa("avx512");
  for (const synth::cpu::KernelSpec &spec : specs) {
    if (!fusion.attention && !checkedPerOp(spec.anchor)) {
      continue; // the other kernels are checked with attention fused
    }
    std::string kind = checkedPerOp(spec.anchor)
                           ? spec.anchor
                           : sched::kernelKind(spec.traits);
    std::string base;
    for (const sched::FieldDef &field : sched::fieldsOf(spec.traits)) {
      std::string key = kind + "." + field.name;
      if (covered.count(key)) {
        continue;
      }
      uncovered.insert(key);
      for (const sched::FieldValue &value : alternatives(
               field, spec.schedules.at("avx512").fields.at(field.name))) {
        synth::cpu::KernelSpec changed = spec;
        sched::Schedule &s = changed.schedules.at("avx512");
        s.fields[field.name] = value;
        if (sched::validate(s, spec.traits, isa)) {
          continue; // not valid on this kernel's shapes
        }
        if (base.empty()) {
          base = lowered(spec);
        }
        if (lowered(changed) != base) {
          covered.insert(key);
          uncovered.erase(key);
          break;
        }
      }
    }
  }
}

TEST(ScheduleFields, EveryFieldChangesTheLoweredStatement) {
  std::set<std::string> uncovered, covered;
  for (const char *attention :
       {R"({"kind": "dot"})", R"({"kind": "random", "trainable": true})"}) {
    std::string description =
        std::string(R"({"name": "schedule fields", "task": "lm", "d_model": 64,
            "heads": 2, "layers": 1, "ffn": 128, "max_len": 32,
            "vocab": {"kind": "bytes"}, "attention": )") +
        attention + "}";
    checkEveryField(description, uncovered, covered);
  }
  std::string missing;
  for (const std::string &key : uncovered) {
    missing += " " + key;
  }
  EXPECT_TRUE(uncovered.empty())
      << "schedule fields that change no kernel's statement:" << missing;
  // Every kind the models have, and every field of it, was tried.
  for (const char *key : {"linear.row_block",
                          "linear.col_vectors",
                          "linear.reduction_unroll",
                          "linear.matmul_at",
                          "linear.prologue_at",
                          "linear.stack_order",
                          "fused_attention.key_tile",
                          "fused_attention.query_tile",
                          "fused_attention.pv_query_block",
                          "fused_attention.pv_value_vectors",
                          "fused_attention.score_key_vectors",
                          "fused_attention.score_query_block",
                          "fused_attention.reduce_lanes",
                          "fused_attention.score_layout",
                          "fused_attention_grad.grad_tile",
                          "fused_attention_grad.grad_batch_tile",
                          "attention_stats.stats_query_tile",
                          "linear_weight_grad.wgrad_row_block",
                          "elementwise.vector_width",
                          "elementwise.parallel"}) {
    EXPECT_TRUE(covered.count(key)) << key;
  }
}

TEST(ScheduleFields, EveryFieldOfUnfusedAttentionChangesItsStatement) {
  // Every score kind in one mixture, attention fusion off: a kernel per
  // score op, one for the mixture and one for attend.
  std::string description =
      R"({"name": "unfused attention fields", "task": "lm", "d_model": 64,
          "heads": 2, "layers": 1, "ffn": 128, "max_len": 32,
          "vocab": {"kind": "bytes"}, "attention": {"kind": "mixture",
          "parts": [{"kind": "dot"}, {"kind": "dense", "hidden": 32},
                    {"kind": "random", "trainable": true},
                    {"kind": "factorized_random", "rank": 8},
                    {"kind": "factorized_dense", "a": 8, "b": 4,
                     "hidden": 32}]}})";
  mlir::synth::FusionOptions fusion;
  fusion.attention = false;
  std::set<std::string> uncovered, covered;
  checkEveryField(description, uncovered, covered, fusion);
  std::string missing;
  for (const std::string &key : uncovered) {
    missing += " " + key;
  }
  EXPECT_TRUE(uncovered.empty())
      << "schedule fields that change no kernel's statement:" << missing;
  for (const char *key : {"attend.vector_width",
                          "attend.parallel",
                          "attend.parallel_task",
                          "attend.row_block",
                          "attend.col_vectors",
                          "attend.reduction_unroll",
                          "attend.matmul_at",
                          "attend.row_stats_at",
                          "dot_scores.row_block",
                          "dot_scores.col_vectors",
                          "dot_scores.reduction_unroll",
                          "dot_scores.matmul_at",
                          "dense_scores.matmul_at",
                          "dense_scores.row_block",
                          "factorized_random_scores.matmul_at",
                          "factorized_random_scores.col_vectors",
                          "factorized_dense_scores.row_block",
                          "factorized_dense_scores.col_vectors",
                          "factorized_dense_scores.reduction_unroll",
                          "random_scores.vector_width",
                          "random_scores.parallel",
                          "mixture_scores.vector_width",
                          "mixture_scores.parallel_task"}) {
    EXPECT_TRUE(covered.count(key)) << key;
  }
}

} // namespace
