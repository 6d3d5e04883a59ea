//===- TuneSearchTest.cpp - synth-tune's moves stay in the valid space ----===//
//
// For every kernel of two tiny models (a trained dot-attention LM and a
// random/dot mixture) on every target class: the space holds the default
// schedule's values, every random point and every neighbour passes the
// schedule check (so synthc accepts it), and a neighbour differs from where
// it started.
//
//===----------------------------------------------------------------------===//

#include "frontend/ModelBuilder.h"
#include "frontend/ModelConfig.h"
#include "passes/CpuSchedule.h"
#include "passes/KernelUtils.h"
#include "passes/Passes.h"
#include "tools/synth-tune/Search.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <random>
#include <string>

namespace {

namespace sched = synth::sched;
namespace tune = synth::tune;

void checkModel(const std::string &config) {
  absl::StatusOr<synth::ModelConfig> model = synth::loadModelConfig(
      std::string(SYNTH_SOURCE_DIR) + "/test/reference/configs/" + config);
  ASSERT_TRUE(model.ok()) << model.status().message();
  mlir::MLIRContext context;
  synth::ShapeOptions shapes;
  shapes.batch = 2;
  shapes.seqLen = 12;
  auto module = synth::buildModelModule(context, *model, shapes);
  ASSERT_TRUE(module.ok()) << module.status().message();
  mlir::synth::TrainingPipelineOptions training;
  training.gradients = true;
  training.trainStep = true;
  mlir::PassManager pm(&context);
  mlir::synth::buildCpuKernelPipeline(pm, training);
  ASSERT_TRUE(mlir::succeeded(pm.run(**module)));
  std::mt19937_64 rng(7);
  int kernels = 0;
  (**module).walk([&](mlir::synth::KernelOp kernel) {
    ++kernels;
    sched::KernelTraits traits = mlir::synth::kernelTraits(kernel);
    for (const sched::Isa &isa : sched::isas()) {
      std::string what = kernel.getKernelName().str() + " on " + isa.name;
      sched::Schedule defaults = mlir::synth::scheduleFromAttr(
          kernel.getScheduleAttr().getTarget(isa.name));
      tune::KernelSpace space =
          tune::spaceOf(kernel.getKernelName().str(), traits, isa, defaults);
      ASSERT_EQ(space.fields.size(), sched::fieldsOf(traits).size()) << what;
      for (const tune::FieldSpace &f : space.fields) {
        EXPECT_NE(std::find(f.values.begin(), f.values.end(),
                            defaults.fields.at(f.name)),
                  f.values.end())
            << what << ": field " << f.name << " lacks its default";
      }
      for (int i = 0; i < 20; ++i) {
        std::optional<sched::Schedule> point = tune::randomPoint(space, rng);
        ASSERT_TRUE(point.has_value()) << what;
        EXPECT_EQ(sched::validate(*point, traits, isa), std::nullopt) << what;
        std::optional<sched::Schedule> next =
            tune::neighbour(space, *point, rng);
        if (space.size() > 1) {
          ASSERT_TRUE(next.has_value()) << what;
          EXPECT_EQ(sched::validate(*next, traits, isa), std::nullopt) << what;
          EXPECT_NE(next->fields, point->fields) << what;
        }
      }
    }
  });
  EXPECT_GT(kernels, 10);
}

TEST(TuneSearch, DotLanguageModelWithTraining) { checkModel("lm_dot.json"); }

TEST(TuneSearch, MixtureLanguageModelWithTraining) {
  checkModel("lm_random_dot.json");
}

} // namespace
