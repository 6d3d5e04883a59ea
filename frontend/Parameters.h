//===- Parameters.h - the parameter table, initialization, weight checks
//---===//
//
// Every parameter tensor a model description implies, with its documented
// name (docs/model-format.md), shape, trainability and initializer; the
// deterministic initialization from the description's seed; and the check of
// a weights file against the table. Independent of MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_FRONTEND_PARAMETERS_H
#define SYNTHC_FRONTEND_PARAMETERS_H

#include "frontend/ModelConfig.h"
#include "runtime/Safetensors.h"

#include <string>
#include <vector>

namespace synth {

enum class InitKind {
  Zeros,
  Ones,
  /// N(0, scale^2).
  Normal,
  /// U(-scale, scale); glorot-uniform uses scale = sqrt(6 / (fan_in +
  /// fan_out)).
  Uniform,
};

struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  bool trainable = true;
  InitKind init = InitKind::Zeros;
  double scale = 0.0;

  int64_t numel() const;
  /// "normal(0, 0.02)", "glorot_uniform(±0.108)", "zeros", "ones".
  std::string initDescription() const;
};

/// The parameters of `config` in the documented order (the order of the
/// parameter arguments of the generated functions and of weights files).
std::vector<ParamInfo> parameterTable(const ModelConfig &config);

/// Fresh parameters drawn from `seed`: each tensor from its own stream
/// (SplitMix64 seeded with seed ^ FNV-1a(name)), so one parameter's values do
/// not depend on which other parameters exist. float32, in table order.
safetensors::File initializeParameters(const std::vector<ParamInfo> &table,
                                       uint64_t seed);

/// Checks that `weights` holds exactly the tables' tensors (names, shapes,
/// float32); errors name the file, the tensor and what differs.
absl::Status checkParameters(const safetensors::File &weights,
                             const std::vector<ParamInfo> &table,
                             const std::string &source);

/// The deterministic generator behind initializeParameters, exposed for tests
/// and tools that need reproducible random inputs.
class SplitMix64 {
public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  /// Uniform in [0, 1) from the top 53 bits.
  double uniform();
  /// Standard normal by Box-Muller (cosine branch, two uniforms each).
  double normal();

private:
  uint64_t state_;
};

/// FNV-1a 64-bit hash of `text`.
uint64_t fnv1a64(const std::string &text);

} // namespace synth

#endif // SYNTHC_FRONTEND_PARAMETERS_H
