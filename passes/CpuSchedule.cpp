//===- CpuSchedule.cpp - CPU schedule fields, ranges and defaults ---------===//
//
// Field tables per kernel kind and the default heuristic. A linear's register
// block holds row_block x col_vectors accumulators plus col_vectors weight
// vectors and one broadcast operand: on AVX-512 (32 registers) 6 x 4 + 4 + 1
// = 29; on AVX2 and SSE4.1 (16 registers) 6 x 2 + 2 + 1 = 15. Fused
// attention's two products per tile (scores = Q K^T, then P V) have blocks of
// 4 queries x col_vectors vectors (16 or 8 accumulators, at least the FMA
// latency times the FMA ports of these cores), so that 4 divides the default
// query tile of 32.
//
//===----------------------------------------------------------------------===//

#include "passes/CpuSchedule.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace synth::sched {

const std::vector<Isa> &isas() {
  static const std::vector<Isa> all = {
      {"avx512", 16, 32}, {"avx2", 8, 16}, {"sse41", 4, 16}};
  return all;
}

const Isa *findIsa(const std::string &name) {
  for (const Isa &isa : isas()) {
    if (name == isa.name) {
      return &isa;
    }
  }
  return nullptr;
}

const Isa &isaOfHalideTarget(const std::string &target) {
  std::vector<std::string> features;
  std::stringstream stream(target);
  for (std::string part; std::getline(stream, part, '-');) {
    features.push_back(part);
  }
  auto has = [&](const char *f) {
    return std::find(features.begin(), features.end(), f) != features.end();
  };
  if (has("avx512")) {
    return isas()[0];
  }
  if (has("avx2")) {
    return isas()[1];
  }
  return isas()[2];
}

const std::vector<std::string> &autoschedulers() {
  static const std::vector<std::string> all = {"adams2019", "li2018",
                                               "mullapudi2016"};
  return all;
}

bool isAutoscheduler(const std::string &name) {
  const std::vector<std::string> &all = autoschedulers();
  return std::find(all.begin(), all.end(), name) != all.end();
}

std::string toString(const FieldValue &value) {
  if (const int64_t *i = std::get_if<int64_t>(&value)) {
    return std::to_string(*i);
  }
  return "\"" + std::get<std::string>(value) + "\"";
}

int64_t Schedule::integer(const std::string &name) const {
  auto it = fields.find(name);
  if (it == fields.end() || !std::holds_alternative<int64_t>(it->second)) {
    throw std::out_of_range("the schedule has no integer field '" + name + "'");
  }
  return std::get<int64_t>(it->second);
}

const std::string &Schedule::choice(const std::string &name) const {
  auto it = fields.find(name);
  if (it == fields.end() || !std::holds_alternative<std::string>(it->second)) {
    throw std::out_of_range("the schedule has no choice field '" + name + "'");
  }
  return std::get<std::string>(it->second);
}

namespace {

bool hasOp(const KernelTraits &kernel, const char *op) {
  return std::find(kernel.ops.begin(), kernel.ops.end(), op) !=
         kernel.ops.end();
}

FieldDef integerField(std::string name, int64_t min, int64_t max,
                      std::string doc, bool powerOfTwo = false) {
  FieldDef f;
  f.name = std::move(name);
  f.min = min;
  f.max = max;
  f.powerOfTwo = powerOfTwo;
  f.doc = std::move(doc);
  return f;
}

FieldDef choiceField(std::string name, std::vector<std::string> choices,
                     std::string doc) {
  FieldDef f;
  f.name = std::move(name);
  f.choices = std::move(choices);
  f.doc = std::move(doc);
  return f;
}

std::vector<std::string> parallelChoices(const std::string &kind) {
  if (kind == "fused_attention") {
    return {"batch_heads", "batch", "heads", "query_tiles", "none"};
  }
  if (kind == "fused_attention_grad" || kind == "attention_stats") {
    return {"batch_heads", "none"};
  }
  if (kind == "attend") {
    return {"batch_heads", "batch", "heads", "none"};
  }
  if (kind == "linear_weight_grad") {
    return {"col_blocks", "none"};
  }
  if (kind == "linear") {
    return {"outer", "row_blocks", "col_blocks", "none"};
  }
  return {"outer", "none"};
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

} // namespace

std::string kernelKind(const KernelTraits &kernel) {
  for (const char *kind :
       {"fused_attention_grad", "attention_stats", "fused_attention", "attend",
        "linear_weight_grad", "linear"}) {
    if (hasOp(kernel, kind)) {
      return kind;
    }
  }
  return "elementwise";
}

std::vector<FieldDef> fieldsOf(const KernelTraits &kernel) {
  std::string kind = kernelKind(kernel);
  std::vector<FieldDef> fields = {
      integerField("vector_width", 1, 16,
                   "float32 lanes of the innermost loops (at most the "
                   "target's: 16 avx512, 8 avx2, 4 sse41)",
                   true),
      choiceField("parallel", parallelChoices(kind),
                  "which loop runs on the thread pool"),
      integerField("parallel_task", 1, 1 << 20,
                   "iterations of the parallel loop per task"),
  };
  // Matmuls: a linear, the probabilities-times-values of attend_probs and
  // attend, the products of the unfused score ops. A factorized dense
  // score's products (its hidden layer and two heads) are all stored before
  // their outer product, so it has no matmul_at.
  bool outputMatmul = hasOp(kernel, "linear") ||
                      hasOp(kernel, "attend_probs") ||
                      hasOp(kernel, "attend") || hasOp(kernel, "dot_scores") ||
                      hasOp(kernel, "dense_scores") ||
                      hasOp(kernel, "factorized_random_scores");
  if (outputMatmul || hasOp(kernel, "factorized_dense_scores")) {
    fields.push_back(integerField("row_block", 1, 16,
                                  "rows of the register block of a matmul"));
    fields.push_back(integerField(
        "col_vectors", 1, 8,
        "vectors of output columns of the register block of a matmul"));
    fields.push_back(integerField(
        "reduction_unroll", 1, 16,
        "unroll factor of the reduction loop inside the register block"));
  }
  if (outputMatmul) {
    fields.push_back(choiceField(
        "matmul_at", {"tile", "root"},
        "the product computed per output tile of its epilogue (tile) or "
        "stored whole first (root)"));
  }
  if (hasOp(kernel, "layer_norm") || hasOp(kernel, "layer_norm_grad") ||
      hasOp(kernel, "layer_norm_gamma_grad") ||
      hasOp(kernel, "attention_probs") || hasOp(kernel, "cross_entropy_grad") ||
      hasOp(kernel, "attend")) {
    fields.push_back(choiceField(
        "row_stats_at", {"row", "root"},
        "per-row statistics (mean and variance, max and sum) computed at "
        "each output row or stored first"));
  }
  if (std::count(kernel.ops.begin(), kernel.ops.end(), "linear") > 1) {
    fields.push_back(choiceField(
        "stack_order", {"weights", "rows"},
        "linears of one input (synth-fuse-projections) as one product: each "
        "weight's product in turn (weights), or every weight per row block "
        "of the input (rows)"));
  }
  if (hasOp(kernel, "layer_norm") && hasOp(kernel, "linear")) {
    fields.push_back(choiceField(
        "prologue_at", {"block", "root"},
        "a layer norm prologue (synth-fuse-projections) computed per row "
        "block of the product that reads it, or stored whole first"));
  }
  if (hasOp(kernel, "fused_attention")) {
    fields.push_back(integerField("query_tile", 1, 4096,
                                  "queries per online-softmax state"));
    fields.push_back(integerField(
        "key_tile", 1, 4096,
        "keys per step of the online softmax (the score tile's width)"));
    fields.push_back(integerField(
        "score_key_vectors", 1, 8,
        "vectors of keys per register block of the score tile (with "
        "score_query_block queries)"));
    fields.push_back(
        integerField("pv_query_block", 1, 16,
                     "queries per register block of the tile's P V product"));
    fields.push_back(integerField(
        "pv_value_vectors", 1, 8,
        "vectors of the head dimension per register block of P V"));
    fields.push_back(integerField(
        "reduce_lanes", 0, 16,
        "lanes of the score tile's row max and sum (rfactor; 0: scalar); "
        "must divide the key tile",
        true));
    fields.push_back(
        choiceField("score_layout", {"keys_inner", "queries_inner"},
                    "storage order of the score and probability tiles"));
  }
  if (hasOp(kernel, "fused_attention") ||
      hasOp(kernel, "fused_attention_grad") ||
      hasOp(kernel, "attention_stats")) {
    fields.push_back(
        integerField("score_query_block", 1, 16,
                     "queries per register block of a recomputed score tile"));
  }
  if (hasOp(kernel, "fused_attention_grad")) {
    fields.push_back(integerField(
        "grad_tile", 1, 4096,
        "output rows (queries for dQ, keys for dK and dV) per tile"));
    fields.push_back(integerField("grad_row_block", 1, 16,
                                  "rows per register block inside a tile"));
    fields.push_back(
        integerField("grad_batch_tile", 1, 4096,
                     "rows per tile of a gradient reduced over the batch"));
  }
  if (hasOp(kernel, "attention_stats")) {
    fields.push_back(integerField("stats_query_tile", 1, 4096,
                                  "queries per tile of the row statistics"));
  }
  if (hasOp(kernel, "linear_weight_grad")) {
    fields.push_back(
        integerField("wgrad_row_block", 1, 16,
                     "weight rows of the register block of a weight gradient"));
    fields.push_back(
        integerField("wgrad_col_vectors", 1, 8,
                     "vectors of weight columns of the register block"));
  }
  return fields;
}

Schedule defaultSchedule(const KernelTraits &kernel, const Isa &isa) {
  Schedule s;
  const int64_t lanes = isa.floatLanes;
  const int64_t colVectors = lanes >= 16 ? 4 : 2;
  const int64_t rowBlock =
      std::min<int64_t>(8, (isa.registers - colVectors - 1) / colVectors);
  for (const FieldDef &f : fieldsOf(kernel)) {
    FieldValue v;
    if (f.name == "vector_width" || f.name == "reduce_lanes") {
      v = lanes;
    } else if (f.name == "parallel") {
      v = f.choices.front();
    } else if (f.name == "parallel_task" || f.name == "reduction_unroll") {
      v = int64_t{1};
    } else if (f.name == "row_block" || f.name == "wgrad_row_block") {
      v = rowBlock;
    } else if (f.name == "col_vectors" || f.name == "wgrad_col_vectors") {
      v = colVectors;
    } else if (f.name == "matmul_at") {
      v = std::string("tile");
    } else if (f.name == "row_stats_at") {
      v = std::string("row");
    } else if (f.name == "prologue_at") {
      // Stacked products read it once per weight (stack_order weights).
      v = std::string(
          std::count(kernel.ops.begin(), kernel.ops.end(), "linear") > 1
              ? "root"
              : "block");
    } else if (f.name == "stack_order") {
      v = std::string("weights");
    } else if (f.name == "query_tile") {
      v = int64_t{32};
    } else if (f.name == "key_tile") {
      v = int64_t{64};
    } else if (f.name == "pv_query_block") {
      v = int64_t{4};
    } else if (f.name == "score_key_vectors") {
      v = colVectors;
    } else if (f.name == "pv_value_vectors") {
      v = std::clamp<int64_t>(ceilDiv(kernel.headDim, lanes), 1, colVectors);
    } else if (f.name == "score_layout") {
      v = std::string("keys_inner");
    } else if (f.name == "score_query_block" || f.name == "grad_row_block") {
      v = int64_t{4};
    } else if (f.name == "grad_tile" || f.name == "stats_query_tile") {
      v = int64_t{16};
    } else if (f.name == "grad_batch_tile") {
      v = int64_t{8};
    } else {
      throw std::logic_error("no default for schedule field " + f.name);
    }
    s.fields[f.name] = v;
  }
  // A reduction split without a tail needs lanes that divide the key tile.
  if (s.fields.count("reduce_lanes")) {
    int64_t keyTile = std::get<int64_t>(s.fields["key_tile"]);
    if (kernel.keys > 0) {
      keyTile = std::min(keyTile, kernel.keys);
    }
    int64_t r = lanes;
    while (r > 1 && keyTile % r != 0) {
      r /= 2;
    }
    s.fields["reduce_lanes"] = r;
  }
  return s;
}

std::optional<std::string> validateField(const std::string &name,
                                         const FieldValue &value,
                                         const KernelTraits &kernel,
                                         const Isa &isa) {
  std::vector<FieldDef> fields = fieldsOf(kernel);
  auto it = std::find_if(fields.begin(), fields.end(),
                         [&](const FieldDef &f) { return f.name == name; });
  if (it == fields.end()) {
    std::string known;
    for (const FieldDef &f : fields) {
      known += (known.empty() ? "" : ", ") + f.name;
    }
    return "field '" + name + "': a kernel of kind " + kernelKind(kernel) +
           " has no such field (its fields: " + known + ")";
  }
  const FieldDef &f = *it;
  if (!f.choices.empty()) {
    const std::string *s = std::get_if<std::string>(&value);
    std::string list;
    for (const std::string &c : f.choices) {
      list += (list.empty() ? "" : ", ") + c;
    }
    if (!s) {
      return "field '" + name + "': expected one of " + list + ", got " +
             toString(value);
    }
    if (std::find(f.choices.begin(), f.choices.end(), *s) == f.choices.end()) {
      if (name == "parallel") {
        return "field 'parallel': a kernel of kind " + kernelKind(kernel) +
               " has no parallel loop '" + *s + "' (expected one of " + list +
               ")";
      }
      return "field '" + name + "': '" + *s + "' is not one of " + list;
    }
    return std::nullopt;
  }
  const int64_t *i = std::get_if<int64_t>(&value);
  if (!i) {
    return "field '" + name + "': expected an integer, got " + toString(value);
  }
  int64_t max = f.max;
  if (name == "vector_width" || name == "reduce_lanes") {
    max = std::min<int64_t>(max, isa.floatLanes);
    if (*i > max) {
      return "field '" + name + "': " + std::to_string(*i) + " lanes, but " +
             isa.name + " vectors hold " + std::to_string(isa.floatLanes) +
             " float32";
    }
  }
  if (*i < f.min || *i > max) {
    return "field '" + name + "': " + std::to_string(*i) + " is outside [" +
           std::to_string(f.min) + ", " + std::to_string(max) + "]";
  }
  if (f.powerOfTwo && *i > 0 && (*i & (*i - 1)) != 0) {
    return "field '" + name + "': " + std::to_string(*i) +
           " is not a power of two";
  }
  return std::nullopt;
}

std::optional<std::string>
validate(const Schedule &schedule, const KernelTraits &kernel, const Isa &isa) {
  for (const auto &[name, value] : schedule.fields) {
    if (auto error = validateField(name, value, kernel, isa)) {
      return error;
    }
  }
  for (const FieldDef &f : fieldsOf(kernel)) {
    if (!schedule.fields.count(f.name)) {
      return "field '" + f.name + "' is missing";
    }
  }
  if (schedule.fields.count("reduce_lanes")) {
    int64_t lanes = schedule.integer("reduce_lanes");
    int64_t keyTile = schedule.integer("key_tile");
    if (kernel.keys > 0) {
      keyTile = std::min(keyTile, kernel.keys);
    }
    if (lanes > 1 && keyTile % lanes != 0) {
      return "field 'reduce_lanes': " + std::to_string(lanes) +
             " lanes do not divide the key tile of " + std::to_string(keyTile) +
             " and the row reductions have no tail handling";
    }
  }
  if (schedule.fields.count("score_layout") &&
      schedule.choice("score_layout") == "queries_inner" && kernel.keys > 0) {
    int64_t keyTile = std::min(schedule.integer("key_tile"), kernel.keys);
    if (kernel.keys % keyTile != 0) {
      // Halide 14 computes wrong query-major tiles when the last key tile is
      // partial (found by synth-tune; docs/schedules.md).
      return "field 'score_layout': queries_inner needs a key tile that "
             "divides the " +
             std::to_string(kernel.keys) + " keys (key_tile " +
             std::to_string(keyTile) +
             " leaves a partial tile, which this layout does not handle)";
    }
  }
  return std::nullopt;
}

} // namespace synth::sched
