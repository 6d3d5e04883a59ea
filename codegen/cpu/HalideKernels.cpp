//===- HalideKernels.cpp - KernelSpec -> Halide pipeline -> object code ---===//
//
// Algorithm first: each op of the kernel becomes a Func written in row-major
// index order (at()/define() reverse it into Halide's innermost-first order).
// Then the schedule: outputs are parallel over their outermost dimension and
// vectorized along the innermost; reductions are placed per anchor op:
//   linear          the product is computed per tile of the output rows
//   layer_norm      row statistics at each output row
//   fused_attention one state per query tile, updated once per key tile from
//                   tile-local max / sum / value products (online softmax:
//                   scratch is [query tile x key tile], never N x N)
// Halide errors are exceptions; they become absl::Status values here.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/HalideKernels.h"
#include "runtime/CpuFeatures.h"

#include "Halide.h"
#include "absl/strings/str_cat.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace synth::cpu {

namespace rt = synth::rt;

namespace {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

/// Masked scores: far below any real score, yet finite, so exp() of
/// differences never produces NaN.
constexpr float kMaskedScore = -1e30f;

Halide::Type halideType(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return Halide::Float(32);
  case ElementType::I32:
    return Halide::Int(32);
  case ElementType::U8:
    return Halide::UInt(8);
  }
  return Halide::Float(32);
}

/// A tensor as a Func over row-major indices.
struct TensorFunc {
  Func func;
  std::vector<int64_t> shape;
  int64_t dim(size_t i) const { return shape.at(i); }
  size_t rank() const { return shape.size(); }
};

Expr at(const TensorFunc &t, std::vector<Expr> index) {
  std::reverse(index.begin(), index.end());
  return t.func(index);
}

std::vector<Var> makeVars(size_t rank, const std::string &prefix) {
  std::vector<Var> vars;
  for (size_t i = 0; i < rank; ++i) {
    vars.emplace_back(absl::StrCat(prefix, "_d", i));
  }
  return vars;
}

std::vector<Expr> exprs(const std::vector<Var> &vars) {
  return std::vector<Expr>(vars.begin(), vars.end());
}

/// Defines f(vars) = value with vars in row-major order.
void define(Func &f, std::vector<Var> vars, Expr value) {
  std::reverse(vars.begin(), vars.end());
  f(vars) = value;
}

/// The row-major multi-index of flat position `flat` in `shape`.
std::vector<Expr> unflatten(Expr flat, const std::vector<int64_t> &shape) {
  std::vector<Expr> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    int extent = static_cast<int>(shape[d]);
    index[d] = d == 0 ? flat : flat % extent;
    flat = flat / extent;
  }
  return index;
}

int64_t product(const std::vector<int64_t> &dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    n *= d;
  }
  return n;
}

/// erf to ~1e-7 relative accuracy (Numerical Recipes' erfc Chebyshev fit):
/// Halide has no erf, and exact GELU needs one.
Expr erfApprox(Expr x) {
  Expr z = Halide::abs(x);
  Expr t = 1.0f / (1.0f + 0.5f * z);
  Expr poly = -1.26551223f +
              t * (1.00002368f +
                   t * (0.37409196f +
                        t * (0.09678418f +
                             t * (-0.18628806f +
                                  t * (0.27886807f +
                                       t * (-1.13520398f +
                                            t * (1.48851587f +
                                                 t * (-0.82215223f +
                                                      t * 0.17087277f))))))));
  Expr erfc = t * Halide::exp(-z * z + poly);
  return Halide::select(x >= 0, 1.0f - erfc, erfc - 1.0f);
}

/// d/dx gelu(x), exact (erf) or of the tanh approximation.
Expr geluDerivative(Expr x, bool tanhApproximation) {
  if (tanhApproximation) {
    const float k = 0.7978845608f;
    Expr t = Halide::tanh(k * (x + 0.044715f * x * x * x));
    return 0.5f * (1.0f + t) +
           0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
  }
  Expr phi = 0.3989422804f * Halide::exp(-0.5f * x * x);
  return 0.5f * (1.0f + erfApprox(x * 0.70710678118f)) + x * phi;
}

/// The Funcs of one kernel and what the schedule needs to know about them.
class KernelBuilder {
public:
  /// `schedule`: the kernel's schedule for the target being compiled (every
  /// field of passes/CpuSchedule.h for the kernel's ops, already checked).
  KernelBuilder(const KernelSpec &spec, const sched::Schedule &schedule)
      : spec_(spec), sched_(schedule) {}

  /// Builds the algorithm and the schedule; returns the output Funcs.
  std::vector<Func> build() {
    for (int i = 0; i < spec_.numInputs; ++i) {
      const TensorSpec &t = spec_.values[i];
      Halide::ImageParam param(halideType(t.type),
                               static_cast<int>(t.shape.size()),
                               absl::StrCat("in", i));
      // Static, dense shapes: let Halide check them and specialize on them.
      int64_t stride = 1;
      for (int d = 0; d < static_cast<int>(t.shape.size()); ++d) {
        int64_t extent = t.shape[t.shape.size() - 1 - d];
        param.dim(d).set_bounds(0, static_cast<int>(extent));
        param.dim(d).set_estimate(0, static_cast<int>(extent));
        param.dim(d).set_stride(static_cast<int>(stride));
        stride *= extent;
      }
      params_.push_back(param);
      Func f(absl::StrCat("input", i));
      std::vector<Var> vars = makeVars(t.shape.size(), absl::StrCat("in", i));
      std::vector<Var> reversed(vars.rbegin(), vars.rend());
      f(reversed) = param(reversed);
      values_[i] = TensorFunc{f, t.shape};
    }
    groupStackedLinears();
    for (opIndex_ = 0; opIndex_ < spec_.ops.size(); ++opIndex_) {
      emit(spec_.ops[opIndex_]);
    }
    std::vector<Func> outputs;
    for (int id : spec_.outputs) {
      outputs.push_back(values_.at(id).func);
    }
    // An autoscheduled kernel gets its schedule from the whole pipeline
    // (compileKernel); the explicit one is applied here.
    if (spec_.scheduler.empty()) {
      schedule(outputs);
    }
    return outputs;
  }

  std::vector<Halide::Argument> arguments() const {
    return std::vector<Halide::Argument>(params_.begin(), params_.end());
  }

  /// Constrains the outputs' buffers to their static dense shapes.
  void constrainOutputs(Halide::Pipeline &pipeline) {
    std::vector<Func> outs = pipeline.outputs();
    for (size_t i = 0; i < outs.size(); ++i) {
      const TensorSpec &t = spec_.values[spec_.outputs[i]];
      Halide::OutputImageParam buffer = outs[i].output_buffer();
      int64_t stride = 1;
      Halide::Region estimates;
      for (int d = 0; d < static_cast<int>(t.shape.size()); ++d) {
        int64_t extent = t.shape[t.shape.size() - 1 - d];
        buffer.dim(d).set_bounds(0, static_cast<int>(extent));
        buffer.dim(d).set_stride(static_cast<int>(stride));
        estimates.emplace_back(0, static_cast<int>(extent));
        stride *= extent;
      }
      // The autoschedulers plan for these sizes (they are the only ones).
      outs[i].set_estimates(estimates);
    }
  }

private:
  const TensorFunc &value(int id) const { return values_.at(id); }

  /// Linears of one input with weights of one shape and layout (Q, K and V
  /// after synth-fuse-projections) share one product.
  void groupStackedLinears() {
    std::map<size_t, std::vector<size_t>> groups; // first op -> members
    for (size_t i = 0; i < spec_.ops.size(); ++i) {
      const OpSpec &op = spec_.ops[i];
      if (op.kind != OpKind::Linear) {
        continue;
      }
      auto match = std::find_if(groups.begin(), groups.end(), [&](auto &g) {
        const OpSpec &l = spec_.ops[g.first];
        return l.operands[0] == op.operands[0] &&
               l.transposeWeight == op.transposeWeight &&
               spec_.values[l.operands[1]].shape ==
                   spec_.values[op.operands[1]].shape;
      });
      if (match == groups.end()) {
        groups[i] = {i};
      } else {
        match->second.push_back(i);
      }
    }
    for (const auto &[leader, members] : groups) {
      if (members.size() < 2) {
        continue;
      }
      for (size_t slot = 0; slot < members.size(); ++slot) {
        stacked_[members[slot]] = {leader, static_cast<int>(slot)};
      }
    }
  }

  void setResult(const OpSpec &op, Func f) {
    values_[op.result] = TensorFunc{f, spec_.values[op.result].shape};
  }

  //===--------------------------------------------------------------------===//
  // Algorithm
  //===--------------------------------------------------------------------===//

  void emit(const OpSpec &op) {
    const std::vector<int64_t> &shape = spec_.values[op.result].shape;
    std::vector<Var> v = makeVars(shape.size(), absl::StrCat("v", op.result));
    std::vector<Expr> e = exprs(v);
    Func f(absl::StrCat(kindName(op.kind), "_", op.result));
    switch (op.kind) {
    case OpKind::Embedding: {
      const TensorFunc &table = value(op.operands[0]);
      const TensorFunc &ids = value(op.operands[1]);
      std::vector<Expr> idIndex(e.begin(), e.end() - 1);
      Expr id = at(ids, idIndex);
      int vocab = static_cast<int>(table.dim(0));
      Expr row = Halide::clamp(id, 0, vocab - 1);
      define(f, v,
             Halide::require(id >= 0 && id < vocab, at(table, {row, e.back()}),
                             "synth.embedding: token id", id,
                             "is outside the vocabulary [0,", vocab, ")"));
      break;
    }
    case OpKind::AddPositions: {
      const TensorFunc &x = value(op.operands[0]);
      const TensorFunc &table = value(op.operands[1]);
      if (op.position < 0) {
        define(f, v, at(x, e) + at(table, {e[1], e[2]}));
        break;
      }
      Expr offset = at(value(op.position), {});
      int rows = static_cast<int>(table.dim(0));
      int n = static_cast<int>(x.dim(1));
      Expr row = Halide::clamp(e[1] + offset, 0, rows - 1);
      define(f, v,
             Halide::require(offset >= 0 && offset + n <= rows,
                             at(x, e) + at(table, {row, e[2]}),
                             "synth.add_positions: position", offset,
                             "+ length", n, "runs past the position table of",
                             rows, "rows"));
      break;
    }
    case OpKind::SliceRows: {
      const TensorFunc &x = value(op.operands[0]);
      Expr offset = at(value(op.operands[1]), {});
      int rows = static_cast<int>(x.dim(1));
      int n = static_cast<int>(shape[1]);
      Expr row = Halide::clamp(e[1] + offset, 0, rows - 1);
      define(f, v,
             Halide::require(
                 offset >= 0 && offset + n <= rows, at(x, {e[0], row, e[2]}),
                 "synth.slice_rows: rows from", offset, "run past", rows));
      break;
    }
    case OpKind::CacheUpdate: {
      const TensorFunc &cache = value(op.operands[0]);
      const TensorFunc &update = value(op.operands[1]);
      Expr position = at(value(op.operands[2]), {});
      int length = static_cast<int>(cache.dim(2));
      int n = static_cast<int>(update.dim(2));
      Expr local = Halide::clamp(e[2] - position, 0, n - 1);
      Expr fresh = e[2] >= position && e[2] < position + n;
      define(f, v,
             Halide::require(
                 position >= 0 && position + n <= length,
                 Halide::select(fresh, at(update, {e[0], e[1], local, e[3]}),
                                at(cache, e)),
                 "synth.cache_update: position", position,
                 "runs past the cache of", length, "rows"));
      break;
    }
    case OpKind::LayerNorm: {
      const TensorFunc &x = value(op.operands[0]);
      int64_t d = x.shape.back();
      std::vector<Var> rows(v.begin(), v.end() - 1);
      std::vector<Expr> rowIdx = exprs(rows);
      RDom r(0, static_cast<int>(d), absl::StrCat("ln_r", op.result));
      std::vector<Expr> xr = rowIdx;
      xr.push_back(r);
      // The row sums as explicit reductions, so that a prologue's schedule
      // can split them across vector lanes (rfactor).
      std::vector<Var> rowsReversed(rows.rbegin(), rows.rend());
      Func sum(absl::StrCat("ln_sum_", op.result));
      define(sum, rows, 0.0f);
      sum(rowsReversed) += at(x, xr);
      Func mean(absl::StrCat("ln_mean_", op.result));
      define(mean, rows,
             at(TensorFunc{sum, {}}, rowIdx) / static_cast<float>(d));
      Func squares(absl::StrCat("ln_squares_", op.result));
      Expr centered = at(x, xr) - at(TensorFunc{mean, {}}, rowIdx);
      define(squares, rows, 0.0f);
      squares(rowsReversed) += centered * centered;
      Func var(absl::StrCat("ln_var_", op.result));
      define(var, rows,
             at(TensorFunc{squares, {}}, rowIdx) / static_cast<float>(d));
      Expr inv =
          1.0f / Halide::sqrt(at(TensorFunc{var, {}}, rowIdx) + op.epsilon);
      define(f, v,
             (at(x, e) - at(TensorFunc{mean, {}}, rowIdx)) * inv *
                     at(value(op.operands[1]), {e.back()}) +
                 at(value(op.operands[2]), {e.back()}));
      bool isPrologue = std::any_of(spec_.ops.begin(), spec_.ops.end(),
                                    [&](const OpSpec &user) {
                                      return user.kind == OpKind::Linear &&
                                             user.operands[0] == op.result;
                                    }) &&
                        std::find(spec_.outputs.begin(), spec_.outputs.end(),
                                  op.result) == spec_.outputs.end();
      if (isPrologue) {
        prologues_[op.result] = f;
        prologueStats_.push_back({mean, f});
        prologueStats_.push_back({var, f});
        prologueSums_.push_back({sum, f, r});
        prologueSums_.push_back({squares, f, r});
      } else {
        rowStats_.push_back({mean, f});
        rowStats_.push_back({var, f});
      }
      break;
    }
    case OpKind::Linear: {
      const TensorFunc &x = value(op.operands[0]);
      int64_t in = x.shape.back();
      // Weight (input r, output o) of a linear.
      auto weightOf = [&](const OpSpec &linear, Expr o, Expr r) -> Expr {
        const TensorFunc &w = value(linear.operands[1]);
        if (!linear.transposeWeight) {
          return at(w, {r, o});
        }
        // W is [out, in]: a transposed copy keeps the product's loads
        // contiguous along the output dimension.
        Func wt(absl::StrCat("weight_t_", linear.result));
        Var wo("wo"), wi("wi");
        wt(wo, wi) = at(w, {wo, wi});
        weightCopies_.push_back(wt);
        return wt(o, r);
      };
      auto prologue = prologues_.find(op.operands[0]);
      Func prologueFunc =
          prologue == prologues_.end() ? Func() : prologue->second;
      std::vector<Expr> call(e.rbegin(), e.rend());
      Expr product;
      auto stacked = stacked_.find(opIndex_);
      if (stacked == stacked_.end() || stacked->second.second == 0) {
        RDom r(0, static_cast<int>(in), absl::StrCat("k", op.result));
        std::vector<Expr> xi(e.begin(), e.end() - 1);
        xi.push_back(r);
        std::vector<Var> reversed(v.rbegin(), v.rend());
        Func mm(absl::StrCat("matmul_", op.result));
        int slots = 1;
        if (stacked == stacked_.end()) {
          define(mm, v, 0.0f);
          mm(reversed) += at(x, xi) * weightOf(op, e.back(), r);
        } else {
          // The group's weights stacked along the product's outermost
          // dimension, which the schedule unrolls: each copy of the loop nest
          // reads one weight.
          std::vector<Expr> weights;
          for (const auto &[index, group] : stacked_) {
            if (group.first == opIndex_) {
              weights.push_back(weightOf(spec_.ops[index], e.back(), r));
            }
          }
          slots = static_cast<int>(weights.size());
          Var slot(absl::StrCat("slot", op.result));
          reversed.push_back(slot);
          mm(reversed) = 0.0f;
          mm(reversed) += at(x, xi) * Halide::mux(slot, weights);
          stackedMatmul_[opIndex_] = matmuls_.size();
          call.push_back(0);
        }
        matmuls_.push_back({mm, f, r, {}, false, slots, prologueFunc});
        product = mm(call);
      } else {
        const MatmulFuncs &shared =
            matmuls_.at(stackedMatmul_.at(stacked->second.first));
        call.push_back(stacked->second.second);
        product = shared.mm(call);
      }
      if (op.hasBias) {
        product = product + at(value(op.operands[2]), {e.back()});
      }
      define(f, v, product);
      break;
    }
    case OpKind::Relu:
      define(f, v, Halide::max(at(value(op.operands[0]), e), 0.0f));
      break;
    case OpKind::Gelu: {
      Expr x = at(value(op.operands[0]), e);
      if (op.geluTanh) {
        Expr inner = 0.7978845608f * (x + 0.044715f * x * x * x);
        define(f, v, 0.5f * x * (1.0f + Halide::tanh(inner)));
      } else {
        define(f, v, 0.5f * x * (1.0f + erfApprox(x * 0.70710678118f)));
      }
      break;
    }
    case OpKind::Add:
      define(f, v, at(value(op.operands[0]), e) + at(value(op.operands[1]), e));
      break;
    case OpKind::SplitHeads: {
      int headDim = static_cast<int>(shape[3]);
      define(f, v,
             at(value(op.operands[0]), {e[0], e[2], e[1] * headDim + e[3]}));
      break;
    }
    case OpKind::MergeHeads: {
      const TensorFunc &x = value(op.operands[0]);
      int headDim = static_cast<int>(x.shape[3]);
      define(f, v, at(x, {e[0], e[2] / headDim, e[1], e[2] % headDim}));
      break;
    }
    case OpKind::MeanPool: {
      const TensorFunc &x = value(op.operands[0]);
      const TensorFunc &mask = value(op.operands[1]);
      RDom n(0, static_cast<int>(x.dim(1)), absl::StrCat("pool_n", op.result));
      Expr m = Halide::cast<float>(at(mask, {e[0], n}) != 0);
      Func count(absl::StrCat("pool_count_", op.result));
      define(count, {v[0]}, Halide::sum(m));
      Func total(absl::StrCat("pool_sum_", op.result));
      define(total, v, Halide::sum(m * at(x, {e[0], n, e[1]})));
      define(f, v,
             at(TensorFunc{total, {}}, e) /
                 Halide::max(1.0f, at(TensorFunc{count, {}}, {e[0]})));
      roots_.push_back(count);
      roots_.push_back(total);
      break;
    }
    case OpKind::CrossEntropy:
      emitCrossEntropy(op, f);
      break;
    case OpKind::AttentionProbs: {
      // Row softmax of R[h, i, 0:N] with the causal mask; masked weights 0.
      const TensorFunc &r = value(op.operands[0]);
      int n = static_cast<int>(shape[2]);
      RDom k(0, n, absl::StrCat("probs_k", op.result));
      auto masked = [&](Expr row, Expr col) {
        Expr s = at(r, {e[0], row, col});
        return op.causal ? Halide::select(col <= row, s, kMaskedScore) : s;
      };
      Func rowMax(absl::StrCat("probs_max_", op.result));
      define(rowMax, {v[0], v[1]}, Halide::maximum(masked(e[1], k)));
      Expr mx = at(TensorFunc{rowMax, {}}, {e[0], e[1]});
      Func denom(absl::StrCat("probs_sum_", op.result));
      define(
          denom, {v[0], v[1]},
          Halide::sum(Halide::select(!op.causal || k <= e[1],
                                     Halide::exp(masked(e[1], k) - mx), 0.0f)));
      Expr weight = Halide::exp(masked(e[1], e[2]) - mx) /
                    at(TensorFunc{denom, {}}, {e[0], e[1]});
      define(f, v,
             op.causal ? Halide::select(e[2] <= e[1], weight, 0.0f) : weight);
      rowStats_.push_back({rowMax, f});
      rowStats_.push_back({denom, f});
      break;
    }
    case OpKind::AttendProbs: {
      // out[b, h, i, :] = sum_j P[h, i, j] V[b, h, j, :], vectorized over the
      // head dimension.
      const TensorFunc &probs = value(op.operands[0]);
      const TensorFunc &values = value(op.operands[1]);
      RDom j(0, static_cast<int>(probs.dim(2)),
             absl::StrCat("pv_j", op.result));
      Func mm(absl::StrCat("pv_", op.result));
      define(mm, v, 0.0f);
      std::vector<Var> reversed(v.rbegin(), v.rend());
      if (op.transposeProbs) {
        // out[b, h, j, :] = sum_i P[h, i, j] dO[b, h, i, :].
        j = RDom(0, static_cast<int>(probs.dim(1)),
                 absl::StrCat("pv_i", op.result));
      }
      Expr p = op.transposeProbs ? at(probs, {e[1], j, e[2]})
                                 : at(probs, {e[1], e[2], j});
      mm(reversed) += p * at(values, {e[0], e[1], j, e[3]});
      define(f, v, at(TensorFunc{mm, shape}, e));
      matmuls_.push_back({mm, f, j});
      break;
    }
    case OpKind::DotScores:
    case OpKind::DenseScores:
    case OpKind::RandomScores:
    case OpKind::FactorizedRandomScores:
    case OpKind::FactorizedDenseScores:
      emitScores(op, f, v);
      break;
    case OpKind::MixtureScores:
      emitMixtureScores(op, f, v);
      break;
    case OpKind::Attend:
      emitAttend(op, f, v);
      break;
    case OpKind::FusedAttention:
      emitAttention(op, f, v);
      break;
    case OpKind::FusedAttentionGrad:
      f = emitAttentionGrad(op, v);
      break;
    case OpKind::AttentionStats:
      f = emitAttentionStats(op, v);
      break;
    case OpKind::EmbeddingGrad: {
      // Scatter-add of the row gradients; columns in parallel blocks, tokens
      // in order inside each (no two threads touch one element).
      const TensorFunc &ids = value(op.operands[0]);
      const TensorFunc &dy = value(op.operands[1]);
      int vocab = static_cast<int>(shape[0]);
      define(f, v, 0.0f);
      RDom r(0, static_cast<int>(product(ids.shape)),
             absl::StrCat("eg_r", op.result));
      std::vector<Expr> idx = unflatten(r, ids.shape);
      Expr row = Halide::clamp(at(ids, idx), 0, vocab - 1);
      idx.push_back(v[1]);
      f(v[1], row) += at(dy, idx);
      scatters_.push_back({f, r});
      break;
    }
    case OpKind::LinearWeightGrad: {
      // dW[i, o] = sum over rows of x[r, i] dy[r, o]: a matmul whose
      // reduction runs over every row.
      const TensorFunc &x = value(op.operands[0]);
      const TensorFunc &dy = value(op.operands[1]);
      // Rows as the last leading dimension (inner) and the product of the
      // others (outer): each outer row block is a chunk of the reduction.
      std::vector<int64_t> lead(x.shape.begin(), x.shape.end() - 1);
      int inner = static_cast<int>(lead.empty() ? 1 : lead.back());
      std::vector<int64_t> outerShape(
          lead.begin(), lead.empty() ? lead.end() : lead.end() - 1);
      RDom r(0, inner, 0, static_cast<int>(product(outerShape)),
             absl::StrCat("wg_r", op.result));
      std::vector<Expr> xi = unflatten(r.y, outerShape);
      if (!lead.empty()) {
        xi.push_back(r.x);
      }
      std::vector<Expr> di = xi;
      Expr in = op.transposeWeight ? e[1] : e[0];
      Expr out = op.transposeWeight ? e[0] : e[1];
      xi.push_back(in);
      di.push_back(out);
      define(f, v, 0.0f);
      std::vector<Var> reversed(v.rbegin(), v.rend());
      f(reversed) += at(x, xi) * at(dy, di);
      weightGrads_.push_back({f, r});
      break;
    }
    case OpKind::SumRows: {
      const TensorFunc &x = value(op.operands[0]);
      std::vector<int64_t> lead(x.shape.begin(), x.shape.end() - 1);
      RDom r(0, static_cast<int>(product(lead)),
             absl::StrCat("sr_r", op.result));
      std::vector<Expr> idx = unflatten(r, lead);
      idx.push_back(e[0]);
      define(f, v, 0.0f);
      f(v[0]) += at(x, idx);
      scatters_.push_back({f, r});
      break;
    }
    case OpKind::LayerNormGrad:
    case OpKind::LayerNormGammaGrad: {
      // xhat = (x - mean) * rstd, statistics recomputed per row.
      const TensorFunc &x = value(op.operands[0]);
      const TensorFunc &dy =
          value(op.operands[op.kind == OpKind::LayerNormGrad ? 2 : 1]);
      int64_t d = x.shape.back();
      std::vector<Var> rows =
          makeVars(x.rank() - 1, absl::StrCat("lnr", op.result));
      std::vector<Expr> rowIdx = exprs(rows);
      RDom r(0, static_cast<int>(d), absl::StrCat("lng_r", op.result));
      std::vector<Expr> xr = rowIdx;
      xr.push_back(r);
      Func mean(absl::StrCat("lng_mean_", op.result));
      define(mean, rows, Halide::sum(at(x, xr)) / static_cast<float>(d));
      Expr mu = at(TensorFunc{mean, {}}, rowIdx);
      Func rstd(absl::StrCat("lng_rstd_", op.result));
      Expr c = at(x, xr) - mu;
      define(rstd, rows,
             1.0f / Halide::sqrt(Halide::sum(c * c) / static_cast<float>(d) +
                                 op.epsilon));
      Expr rs = at(TensorFunc{rstd, {}}, rowIdx);
      if (op.kind == OpKind::LayerNormGammaGrad) {
        std::vector<int64_t> lead(x.shape.begin(), x.shape.end() - 1);
        RDom all(0, static_cast<int>(product(lead)),
                 absl::StrCat("lgg_r", op.result));
        std::vector<Expr> idx = unflatten(all, lead);
        std::vector<Expr> full = idx;
        full.push_back(e[0]);
        define(f, v, 0.0f);
        f(v[0]) += at(dy, full) *
                   (at(x, full) - at(TensorFunc{mean, {}}, idx)) *
                   at(TensorFunc{rstd, {}}, idx);
        scatters_.push_back({f, all});
        roots_.push_back(mean);
        roots_.push_back(rstd);
        break;
      }
      const TensorFunc &gamma = value(op.operands[1]);
      Expr xhatR = (at(x, xr) - mu) * rs;
      Expr gR = at(dy, xr) * at(gamma, {r});
      Func meanG(absl::StrCat("lng_mg_", op.result));
      define(meanG, rows, Halide::sum(gR) / static_cast<float>(d));
      Func meanGX(absl::StrCat("lng_mgx_", op.result));
      define(meanGX, rows, Halide::sum(gR * xhatR) / static_cast<float>(d));
      // The output's own row index.
      std::vector<Expr> outRow(e.begin(), e.end() - 1);
      Expr xhat = (at(x, e) - at(TensorFunc{mean, {}}, outRow)) *
                  at(TensorFunc{rstd, {}}, outRow);
      Expr g = at(dy, e) * at(gamma, {e.back()});
      define(f, v,
             at(TensorFunc{rstd, {}}, outRow) *
                 (g - at(TensorFunc{meanG, {}}, outRow) -
                  xhat * at(TensorFunc{meanGX, {}}, outRow)));
      for (Func stat : {mean, rstd, meanG, meanGX}) {
        rowStats_.push_back({stat, f});
      }
      break;
    }
    case OpKind::ReluGrad:
      define(f, v,
             Halide::select(at(value(op.operands[0]), e) > 0.0f,
                            at(value(op.operands[1]), e), 0.0f));
      break;
    case OpKind::GeluGrad:
      define(f, v,
             at(value(op.operands[1]), e) *
                 geluDerivative(at(value(op.operands[0]), e), op.geluTanh));
      break;
    case OpKind::PositionsGrad: {
      const TensorFunc &dy = value(op.operands[0]);
      int n = static_cast<int>(dy.dim(1));
      RDom b(0, static_cast<int>(dy.dim(0)), absl::StrCat("pg_b", op.result));
      Expr p = Halide::min(e[0], n - 1);
      define(f, v,
             Halide::select(e[0] < n, Halide::sum(at(dy, {b, p, e[1]})), 0.0f));
      break;
    }
    case OpKind::MeanPoolGrad: {
      const TensorFunc &dy = value(op.operands[0]);
      const TensorFunc &mask = value(op.operands[1]);
      RDom n(0, static_cast<int>(mask.dim(1)),
             absl::StrCat("mpg_n", op.result));
      Func count(absl::StrCat("mpg_count_", op.result));
      define(count, {v[0]},
             Halide::sum(Halide::cast<float>(at(mask, {e[0], n}) != 0)));
      roots_.push_back(count);
      define(f, v,
             Halide::select(
                 at(mask, {e[0], e[1]}) != 0,
                 at(dy, {e[0], e[2]}) /
                     Halide::max(1.0f, at(TensorFunc{count, {}}, {e[0]})),
                 0.0f));
      break;
    }
    case OpKind::CrossEntropyGrad:
      emitCrossEntropyGrad(op, f, v);
      break;
    case OpKind::SumSquares: {
      const TensorFunc &x = value(op.operands[0]);
      // Per-row partial sums (vectorizable), then their total.
      std::vector<int64_t> lead(x.shape.begin(), x.shape.end() - 1);
      int64_t last = x.shape.empty() ? 1 : x.shape.back();
      Func partial(absl::StrCat("ss_rows_", op.result));
      Var row("ssr");
      RDom c(0, static_cast<int>(last), absl::StrCat("ss_c", op.result));
      std::vector<Expr> idx = unflatten(row, lead);
      if (!x.shape.empty()) {
        idx.push_back(c);
      }
      Expr sq = at(x, idx);
      partial(row) = Halide::sum(sq * sq);
      RDom r(0, static_cast<int>(product(lead)),
             absl::StrCat("ss_r", op.result));
      f() = Halide::sum(partial(r));
      roots_.push_back(partial);
      break;
    }
    case OpKind::LearningRate: {
      Expr t = Halide::cast<float>(at(value(op.operands[0]), {}));
      Expr total = Halide::cast<float>(at(value(op.operands[1]), {}));
      float warm = static_cast<float>(op.warmupSteps);
      Expr progress = Halide::clamp(
          (t - warm) / Halide::max(1.0f, total - warm), 0.0f, 1.0f);
      Expr cosine = op.finalRatio +
                    (1.0f - op.finalRatio) * 0.5f *
                        (1.0f + Halide::cos(3.14159265358979f * progress));
      Expr rate = op.warmupSteps > 0
                      ? Halide::select(t <= warm, t / warm, cosine)
                      : cosine;
      f() = op.peak * rate;
      break;
    }
    case OpKind::AdamMoment1:
    case OpKind::AdamMoment2: {
      Expr g = at(value(op.operands[0]), e) * clipScale(op);
      Expr old = at(value(op.operands[1]), e);
      define(f, v,
             op.kind == OpKind::AdamMoment1
                 ? op.beta1 * old + (1.0f - op.beta1) * g
                 : op.beta2 * old + (1.0f - op.beta2) * g * g);
      break;
    }
    case OpKind::AdamParam: {
      Expr p = at(value(op.operands[0]), e);
      Expr m = at(value(op.operands[1]), e);
      Expr vv = at(value(op.operands[2]), e);
      Expr lr = at(value(op.operands[3]), {});
      Expr t = Halide::cast<float>(at(value(op.operands[4]), {}));
      Expr c1 = 1.0f - Halide::pow(op.beta1, t);
      Expr c2 = 1.0f - Halide::pow(op.beta2, t);
      Expr update = (m / c1) / (Halide::sqrt(vv / c2) + op.epsilon);
      define(f, v, p - lr * update - lr * op.weightDecay * p);
      break;
    }
    }
    setResult(op, f);
  }

  /// The global-norm clipping factor of an Adam op (1 without clipping).
  Expr clipScale(const OpSpec &op) {
    if (op.maxGradNorm <= 0.0f) {
      return Expr(1.0f);
    }
    Expr sq = at(value(op.operands.back()), {});
    return Halide::min(1.0f, op.maxGradNorm / (Halide::sqrt(sq) + 1e-6f));
  }

  /// d mean-loss / d logits: (softmax - onehot) * scale / count per valid
  /// row, 0 for ignored ones.
  void emitCrossEntropyGrad(const OpSpec &op, Func &f,
                            const std::vector<Var> &v) {
    const TensorFunc &logits = value(op.operands[0]);
    const TensorFunc &targets = value(op.operands[1]);
    int vocab = static_cast<int>(logits.shape.back());
    std::vector<Expr> e = exprs(v);
    std::vector<Var> rows(v.begin(), v.end() - 1);
    std::vector<Expr> rowIdx = exprs(rows);
    RDom k(0, vocab, absl::StrCat("ceg_k", op.result));
    std::vector<Expr> lk = rowIdx;
    lk.push_back(k);
    Func rowMax(absl::StrCat("ceg_max_", op.result));
    define(rowMax, rows, Halide::maximum(at(logits, lk)));
    Expr mx = at(TensorFunc{rowMax, {}}, rowIdx);
    Func rowSum(absl::StrCat("ceg_sum_", op.result));
    define(rowSum, rows, Halide::sum(Halide::exp(at(logits, lk) - mx)));
    std::vector<int64_t> lead(logits.shape.begin(), logits.shape.end() - 1);
    RDom all(0, static_cast<int>(product(lead)),
             absl::StrCat("ceg_all", op.result));
    Func count(absl::StrCat("ceg_count_", op.result));
    count() = Halide::sum(Halide::select(at(targets, unflatten(all, lead)) !=
                                             static_cast<int>(op.ignoreIndex),
                                         1.0f, 0.0f));
    roots_.push_back(count);
    Expr target = at(targets, rowIdx);
    Expr valid = target != static_cast<int>(op.ignoreIndex);
    Expr scale = op.scale >= 0 ? at(value(op.scale), {}) : Expr(1.0f);
    Expr prob =
        Halide::exp(at(logits, e) - mx) / at(TensorFunc{rowSum, {}}, rowIdx);
    Expr onehot = Halide::select(e.back() == target, 1.0f, 0.0f);
    define(f, v,
           Halide::select(valid,
                          (prob - onehot) * scale / Halide::max(1.0f, count()),
                          0.0f));
    rowStats_.push_back({rowMax, f});
    rowStats_.push_back({rowSum, f});
  }

  static const char *kindName(OpKind kind) {
    switch (kind) {
    case OpKind::Embedding:
      return "embedding";
    case OpKind::AddPositions:
      return "add_positions";
    case OpKind::LayerNorm:
      return "layer_norm";
    case OpKind::Linear:
      return "linear";
    case OpKind::Relu:
      return "relu";
    case OpKind::Gelu:
      return "gelu";
    case OpKind::Add:
      return "add";
    case OpKind::SplitHeads:
      return "split_heads";
    case OpKind::MergeHeads:
      return "merge_heads";
    case OpKind::MeanPool:
      return "mean_pool";
    case OpKind::CrossEntropy:
      return "cross_entropy";
    case OpKind::FusedAttention:
      return "fused_attention";
    case OpKind::SliceRows:
      return "slice_rows";
    case OpKind::CacheUpdate:
      return "cache_update";
    case OpKind::AttentionProbs:
      return "attention_probs";
    case OpKind::AttendProbs:
      return "attend_probs";
    case OpKind::DotScores:
      return "dot_scores";
    case OpKind::DenseScores:
      return "dense_scores";
    case OpKind::RandomScores:
      return "random_scores";
    case OpKind::FactorizedRandomScores:
      return "factorized_random_scores";
    case OpKind::FactorizedDenseScores:
      return "factorized_dense_scores";
    case OpKind::MixtureScores:
      return "mixture_scores";
    case OpKind::Attend:
      return "attend";
    case OpKind::EmbeddingGrad:
      return "embedding_grad";
    case OpKind::LinearWeightGrad:
      return "linear_weight_grad";
    case OpKind::SumRows:
      return "sum_rows";
    case OpKind::LayerNormGrad:
      return "layer_norm_grad";
    case OpKind::LayerNormGammaGrad:
      return "layer_norm_gamma_grad";
    case OpKind::ReluGrad:
      return "relu_grad";
    case OpKind::GeluGrad:
      return "gelu_grad";
    case OpKind::PositionsGrad:
      return "positions_grad";
    case OpKind::MeanPoolGrad:
      return "mean_pool_grad";
    case OpKind::CrossEntropyGrad:
      return "cross_entropy_grad";
    case OpKind::FusedAttentionGrad:
      return "fused_attention_grad";
    case OpKind::AttentionStats:
      return "attention_stats";
    case OpKind::SumSquares:
      return "sum_squares";
    case OpKind::LearningRate:
      return "learning_rate";
    case OpKind::AdamMoment1:
      return "adam_m";
    case OpKind::AdamMoment2:
      return "adam_v";
    case OpKind::AdamParam:
      return "adam_param";
    }
    return "op";
  }

  void emitCrossEntropy(const OpSpec &op, Func &f) {
    const TensorFunc &logits = value(op.operands[0]);
    const TensorFunc &targets = value(op.operands[1]);
    size_t rowRank = logits.rank() - 1;
    int vocab = static_cast<int>(logits.shape.back());
    std::vector<Var> rows = makeVars(rowRank, absl::StrCat("ce", op.result));
    std::vector<Expr> rowIdx = exprs(rows);
    RDom k(0, vocab, absl::StrCat("ce_k", op.result));
    std::vector<Expr> lk = rowIdx;
    lk.push_back(k);
    Func rowMax(absl::StrCat("ce_max_", op.result));
    define(rowMax, rows, Halide::maximum(at(logits, lk)));
    Expr mx = at(TensorFunc{rowMax, {}}, rowIdx);
    // Row losses in double: the mean over many rows must match a float64
    // reference to 1e-5.
    Func rowLoss(absl::StrCat("ce_row_", op.result));
    Expr target = at(targets, rowIdx);
    Expr valid = target != static_cast<int>(op.ignoreIndex);
    Expr picked = at(logits, [&] {
      std::vector<Expr> idx = rowIdx;
      idx.push_back(Halide::clamp(target, 0, vocab - 1));
      return idx;
    }());
    Expr lse = Halide::cast<double>(mx) +
               Halide::log(Halide::sum(
                   Halide::cast<double>(Halide::exp(at(logits, lk) - mx))));
    Expr zero = Halide::cast<double>(Expr(0.0f));
    Expr one = Halide::cast<double>(Expr(1.0f));
    Expr loss = Halide::select(valid, lse - Halide::cast<double>(picked), zero);
    define(rowLoss, rows,
           Halide::require(!valid || (target >= 0 && target < vocab), loss,
                           "synth.cross_entropy: target", target,
                           "is outside [0,", vocab, ")"));
    Func rowValid(absl::StrCat("ce_valid_", op.result));
    define(rowValid, rows, Halide::select(valid, one, zero));
    std::vector<std::pair<int, int>> bounds;
    for (size_t i = 0; i < rowRank; ++i) {
      bounds.push_back({0, static_cast<int>(logits.shape[i])});
    }
    std::vector<Halide::Range> ranges;
    for (auto [lo, ext] : bounds) {
      ranges.emplace_back(lo, ext);
    }
    RDom all(ranges, absl::StrCat("ce_all", op.result));
    std::vector<Expr> allIdx;
    for (int i = 0; i < all.dimensions(); ++i) {
      allIdx.push_back(all[i]);
    }
    Expr total = Halide::sum(at(TensorFunc{rowLoss, {}}, allIdx));
    Expr count = Halide::sum(at(TensorFunc{rowValid, {}}, allIdx));
    f() = Halide::cast<float>(total / Halide::max(one, count));
    roots_.push_back(rowMax);
    roots_.push_back(rowLoss);
    roots_.push_back(rowValid);
  }

  /// Unfused attend: softmax(S + mask) V. The row statistics, the
  /// exponentials and the normalized probabilities form a chain read only by
  /// the product, so the schedule may place them with any of its tiles.
  struct AttendFuncs {
    Func result, pv, prob, exps, rowMax, rowSum;
    RDom rj;
    Var c, i, h, b;
    int queries = 0, keys = 0, headDim = 0;
  };

  //===--------------------------------------------------------------------===//
  // Unfused attention (synth-fuse-attention off): score ops, their mixture
  // and attend, each a kernel of its own. The fused emitters above compute
  // the same numbers tile by tile; here the N x M scores are stored.
  //===--------------------------------------------------------------------===//

  /// out = x . w over the last dimension of `x` (an Expr of (row index,
  /// reduction index)) as a stored product of row-major `shape`, plus `bias`
  /// (an Expr of the row-major index): the hidden layers and heads of the
  /// dense synthesizers, scheduled like a linear's stored product.
  Func storedProduct(
      const std::string &name, std::vector<int64_t> shape, int reduction,
      const std::function<Expr(const std::vector<Expr> &, Expr)> &product,
      const std::function<Expr(const std::vector<Expr> &)> &bias, bool relu) {
    std::vector<Var> v = makeVars(shape.size(), name);
    std::vector<Expr> e = exprs(v);
    RDom r(0, reduction, name + "_r");
    Func mm(name + "_mm");
    define(mm, v, 0.0f);
    std::vector<Var> reversed(v.rbegin(), v.rend());
    mm(reversed) += product(e, r);
    Func out(name);
    Expr y = at(TensorFunc{mm, shape}, e) + bias(e);
    define(out, v, relu ? Halide::max(y, 0.0f) : y);
    matmuls_.push_back({mm, out, r, shape, /*internal=*/true});
    return out;
  }

  /// A score op on its own: dot (Q K^T scale), dense (an MLP per token),
  /// random (a slice of R), factorized random (R1 R2^T) or factorized dense
  /// (the outer product of two MLP heads). The products are matmuls of the
  /// schedule's register blocks; their key-side operands are transposed
  /// first so that the blocks load keys with unit stride.
  void emitScores(const OpSpec &op, Func &f, const std::vector<Var> &v) {
    const ScorePartSpec &part = op.parts.at(0);
    const std::vector<int64_t> &shape = spec_.values[op.result].shape;
    std::vector<Expr> e = exprs(v);
    std::vector<Var> reversed(v.rbegin(), v.rend());
    auto operand = [&](size_t k) -> const TensorFunc & {
      return value(part.operands.at(k));
    };
    std::string tag = absl::StrCat(op.result);
    switch (part.kind) {
    case ScoreKind::Dot:
    case ScoreKind::FactorizedRandom: {
      // [B, H, N, M] = q k^T scale, or [H, N, N] = R1 R2^T.
      bool dot = part.kind == ScoreKind::Dot;
      const TensorFunc &left = operand(0), &right = operand(1);
      Func rightT(absl::StrCat(dot ? "keys_t_" : "r2_t_", tag));
      Var tj("tj"), tr("tr"), th("th"), tb("tb");
      if (dot) {
        rightT(tj, tr, th, tb) = at(right, {tb, th, tj, tr});
      } else {
        rightT(tj, tr, th) = at(right, {th, tj, tr});
      }
      weightCopies_.push_back(rightT);
      RDom r(0, static_cast<int>(left.shape.back()),
             absl::StrCat("k", op.result));
      Func mm(absl::StrCat("matmul_", op.result));
      define(mm, v, 0.0f);
      if (dot) {
        mm(reversed) +=
            at(left, {e[0], e[1], e[2], r}) * rightT(e[3], r, e[1], e[0]);
        define(f, v, at(TensorFunc{mm, shape}, e) * part.scale);
      } else {
        mm(reversed) += at(left, {e[0], e[1], r}) * rightT(e[2], r, e[0]);
        define(f, v, at(TensorFunc{mm, shape}, e));
      }
      matmuls_.push_back({mm, f, r});
      return;
    }
    case ScoreKind::Random:
      define(f, v, at(operand(0), {e[0], e[1], e[2]}));
      return;
    case ScoreKind::Dense:
    case ScoreKind::FactorizedDense:
      break;
    }
    // h = relu(x W1 + b1) per head: [B, H, N, k].
    const TensorFunc &x = operand(0), &w1 = operand(1), &b1 = operand(2);
    int64_t batch = shape[0], heads = shape[1], queries = shape[2];
    int64_t hidden = w1.dim(2);
    Func hid = storedProduct(
        absl::StrCat("hidden_", tag), {batch, heads, queries, hidden},
        static_cast<int>(x.dim(2)),
        [&](const std::vector<Expr> &i, Expr r) {
          return at(x, {i[0], i[2], r}) * at(w1, {i[1], r, i[3]});
        },
        [&](const std::vector<Expr> &i) { return at(b1, {i[1], i[3]}); },
        /*relu=*/true);
    // A product with the hidden layer, and a per-head bias (pointers: the
    // lambdas outlive these helpers' arguments).
    auto head = [&hid](const TensorFunc &w) {
      return [&hid, weight = &w](const std::vector<Expr> &i, Expr r) {
        return at(TensorFunc{hid, {}}, {i[0], i[1], i[2], r}) *
               at(*weight, {i[1], r, i[3]});
      };
    };
    if (part.kind == ScoreKind::Dense) {
      // S = h W2 + b2, the first N of its L columns.
      const TensorFunc &w2 = operand(3), &b2 = operand(4);
      RDom r(0, static_cast<int>(hidden), absl::StrCat("k", op.result));
      Func mm(absl::StrCat("matmul_", op.result));
      define(mm, v, 0.0f);
      mm(reversed) += head(w2)(e, r);
      define(f, v, at(TensorFunc{mm, shape}, e) + at(b2, {e[1], e[3]}));
      matmuls_.push_back({mm, f, r});
      return;
    }
    // S[i, p * b + q] = A[i, p] B[i, q], A = h WA + bA, B = h WB + bB.
    const TensorFunc &wa = operand(3), &ba = operand(4), &wb = operand(5),
                     &bb = operand(6);
    int bWidth = static_cast<int>(wb.dim(2));
    auto bias = [](const TensorFunc &t) {
      return
          [b = &t](const std::vector<Expr> &i) { return at(*b, {i[1], i[3]}); };
    };
    Func fa = storedProduct(absl::StrCat("fd_a_", tag),
                            {batch, heads, queries, wa.dim(2)},
                            static_cast<int>(hidden), head(wa), bias(ba),
                            /*relu=*/false);
    Func fb = storedProduct(absl::StrCat("fd_b_", tag),
                            {batch, heads, queries, wb.dim(2)},
                            static_cast<int>(hidden), head(wb), bias(bb),
                            /*relu=*/false);
    std::vector<Expr> ia = {e[0], e[1], e[2], e[3] / bWidth};
    std::vector<Expr> ib = {e[0], e[1], e[2], e[3] % bWidth};
    define(f, v, at(TensorFunc{fa, {}}, ia) * at(TensorFunc{fb, {}}, ib));
  }

  /// sum_m softmax(logits_h)_m S_m; parts without a batch dimension
  /// broadcast over it.
  void emitMixtureScores(const OpSpec &op, Func &f, const std::vector<Var> &v) {
    std::vector<Expr> e = exprs(v);
    const TensorFunc &logits = value(op.logits);
    bool batched = e.size() == 4;
    Expr h = batched ? e[1] : e[0];
    RDom r(0, static_cast<int>(logits.dim(1)),
           absl::StrCat("mix_r", op.result));
    Var mh("mh"), mm("mm");
    Func mx(absl::StrCat("mix_max_", op.result));
    mx(mh) = Halide::maximum(at(logits, {mh, r}));
    Func denom(absl::StrCat("mix_denom_", op.result));
    denom(mh) = Halide::sum(Halide::exp(at(logits, {mh, r}) - mx(mh)));
    Func alpha(absl::StrCat("mix_weights_", op.result));
    alpha(mm, mh) = Halide::exp(at(logits, {mh, mm}) - mx(mh)) / denom(mh);
    roots_.push_back(alpha);
    Expr total;
    for (size_t p = 0; p + 1 < op.operands.size(); ++p) {
      const TensorFunc &part = value(op.operands[p]);
      Expr s = part.rank() == 4 || !batched
                   ? at(part, e)
                   : at(part, std::vector<Expr>(e.begin() + 1, e.end()));
      Expr term = alpha(static_cast<int>(p), h) * s;
      total = total.defined() ? total + term : term;
    }
    define(f, v, total);
  }

  /// softmax_j(S[b, h, i, j] + mask) V[b, h, j, :]: the row max over the
  /// visible keys, exponentials and their row sum, the probabilities (0 for
  /// hidden keys and for every key of a row without visible keys), then
  /// their product with the values.
  void emitAttend(const OpSpec &op, Func &f, const std::vector<Var> &v) {
    const TensorFunc &scores = value(op.operands[0]);
    const TensorFunc &values = value(op.values);
    AttendFuncs a;
    a.keys = static_cast<int>(values.dim(2));
    a.headDim = static_cast<int>(values.dim(3));
    a.queries = static_cast<int>(spec_.values[op.result].shape[2]);
    std::string tag = absl::StrCat("attend", op.result);
    a.c = Var(tag + "_c");
    a.i = Var(tag + "_i");
    a.h = Var(tag + "_h");
    a.b = Var(tag + "_b");
    Var j(tag + "_j");
    Var c = a.c, i = a.i, h = a.h, b = a.b;
    a.rj = RDom(0, a.keys, tag + "_rj");
    auto score = [&](Expr kj, Expr ki) {
      return scores.rank() == 4 ? at(scores, {b, h, ki, kj})
                                : at(scores, {h, ki, kj});
    };
    // Query i sits at absolute position query_offset + i.
    Expr offset = op.position >= 0 ? at(value(op.position), {}) : Expr(0);
    auto visible = [&](Expr kj) {
      Expr ok = Halide::Internal::const_true();
      if (op.causal) {
        ok = kj <= i + offset;
      }
      if (op.keyMask >= 0) {
        ok = ok && at(value(op.keyMask), {b, kj}) != 0;
      }
      return ok;
    };
    a.rowMax = Func(tag + "_max");
    a.rowMax(i, h, b) = kMaskedScore;
    a.rowMax(i, h, b) = Halide::max(
        a.rowMax(i, h, b),
        Halide::select(visible(a.rj), score(a.rj, i), kMaskedScore));
    a.exps = Func(tag + "_exp");
    a.exps(j, i, h, b) = Halide::select(
        visible(j), Halide::exp(score(j, i) - a.rowMax(i, h, b)), 0.0f);
    a.rowSum = Func(tag + "_sum");
    a.rowSum(i, h, b) = 0.0f;
    a.rowSum(i, h, b) += a.exps(a.rj, i, h, b);
    a.prob = Func(tag + "_prob");
    a.prob(j, i, h, b) = Halide::select(
        a.rowSum(i, h, b) > 0.0f, a.exps(j, i, h, b) / a.rowSum(i, h, b), 0.0f);
    a.pv = Func(tag + "_pv");
    a.pv(c, i, h, b) = 0.0f;
    a.pv(c, i, h, b) += a.prob(a.rj, i, h, b) * at(values, {b, h, a.rj, c});
    a.result = Func(tag + "_out");
    a.result(c, i, h, b) = a.pv(c, i, h, b);
    define(f, v, a.result(v[3], v[2], v[1], v[0]));
    attends_.push_back(a);
  }

  /// Scores of one part for query (b, h, i) and key j, all row-major Exprs.
  Expr partScore(const ScorePartSpec &part, size_t index, Expr b, Expr h,
                 Expr i, Expr j, const OpSpec &op) {
    auto operand = [&](size_t k) -> const TensorFunc & {
      return value(part.operands.at(k));
    };
    std::string tag = absl::StrCat(op.result, "_", index);
    switch (part.kind) {
    case ScoreKind::Dot: {
      const TensorFunc &q = operand(0), &k = operand(1);
      Func &s = partFuncs_[tag];
      if (!s.defined()) {
        s = Func(absl::StrCat("dot_scores_", tag));
        Var vb("db"), vh("dh"), vi("di"), vj("dj");
        RDom r(0, static_cast<int>(q.shape[3]), absl::StrCat("dot_r", tag));
        // K transposed per key tile, so the products vectorize over keys
        // with unit stride.
        Func kT(absl::StrCat("keys_t_", tag));
        Var vr("dr");
        kT(vj, vr, vh, vb) = at(k, {vb, vh, vj, vr});
        s(vj, vi, vh, vb) = 0.0f;
        s(vj, vi, vh, vb) += at(q, {vb, vh, vi, r}) * kT(vj, r, vh, vb);
        tileFuncs_.push_back({s, r});
        transposed_.push_back(kT);
      }
      return s(j, i, h, b) * part.scale;
    }
    case ScoreKind::Dense:
    case ScoreKind::FactorizedDense: {
      const TensorFunc &x = operand(0), &w1 = operand(1), &b1 = operand(2);
      Func &hid = partFuncs_[tag + "_hidden"];
      if (!hid.defined()) {
        hid = Func(absl::StrCat("hidden_", tag));
        Var vb("hb"), vh("hh"), vi("hi"), vk("hk");
        RDom r(0, static_cast<int>(x.shape[2]), absl::StrCat("hid_r", tag));
        Func pre(absl::StrCat("hidden_pre_", tag));
        pre(vk, vi, vh, vb) = at(b1, {vh, vk});
        pre(vk, vi, vh, vb) += at(x, {vb, vi, r}) * at(w1, {vh, r, vk});
        hid(vk, vi, vh, vb) = Halide::max(pre(vk, vi, vh, vb), 0.0f);
        queryFuncs_.push_back({pre, r});
      }
      int hidden = static_cast<int>(w1.shape[2]);
      if (part.kind == ScoreKind::Dense) {
        const TensorFunc &w2 = operand(3), &b2 = operand(4);
        Func &s = partFuncs_[tag];
        if (!s.defined()) {
          s = Func(absl::StrCat("dense_scores_", tag));
          Var vb("sb"), vh("sh"), vi("si"), vj("sj");
          RDom r(0, hidden, absl::StrCat("dense_r", tag));
          s(vj, vi, vh, vb) = at(b2, {vh, vj});
          s(vj, vi, vh, vb) += hid(r, vi, vh, vb) * at(w2, {vh, r, vj});
          tileFuncs_.push_back({s, r});
        }
        return s(j, i, h, b);
      }
      const TensorFunc &wa = operand(3), &ba = operand(4), &wb = operand(5),
                       &bb = operand(6);
      int bWidth = static_cast<int>(wb.shape[2]);
      Func &fa = partFuncs_[tag + "_a"];
      Func &fb = partFuncs_[tag + "_b"];
      if (!fa.defined()) {
        Var vb("fb"), vh("fh"), vi("fi"), vp("fp");
        RDom r(0, hidden, absl::StrCat("fd_r", tag));
        fa = Func(absl::StrCat("fd_a_", tag));
        fa(vp, vi, vh, vb) = at(ba, {vh, vp});
        fa(vp, vi, vh, vb) += hid(r, vi, vh, vb) * at(wa, {vh, r, vp});
        fb = Func(absl::StrCat("fd_b_", tag));
        fb(vp, vi, vh, vb) = at(bb, {vh, vp});
        fb(vp, vi, vh, vb) += hid(r, vi, vh, vb) * at(wb, {vh, r, vp});
        queryFuncs_.push_back({fa, r});
        queryFuncs_.push_back({fb, r});
      }
      return fa(j / bWidth, i, h, b) * fb(j % bWidth, i, h, b);
    }
    case ScoreKind::Random:
      return at(operand(0), {h, i, j});
    case ScoreKind::FactorizedRandom: {
      const TensorFunc &r1 = operand(0), &r2 = operand(1);
      Func &s = partFuncs_[tag];
      if (!s.defined()) {
        s = Func(absl::StrCat("factorized_random_scores_", tag));
        Var vh("rh"), vi("ri"), vj("rj");
        RDom r(0, static_cast<int>(r1.shape[2]), absl::StrCat("fr_r", tag));
        Func r2T(absl::StrCat("r2_t_", tag));
        Var vr("rr");
        r2T(vj, vr, vh) = at(r2, {vh, vj, vr});
        s(vj, vi, vh) = 0.0f;
        s(vj, vi, vh) += at(r1, {vh, vi, r}) * r2T(vj, r, vh);
        tileFuncs_.push_back({s, r});
        transposed_.push_back(r2T);
      }
      return s(j, i, h);
    }
    }
    return Expr(0.0f);
  }

  //===--------------------------------------------------------------------===//
  // Backward of the fused attention: statistics and one gradient per kernel
  //===--------------------------------------------------------------------===//

  /// Where a gradient kernel computes its per-tile Funcs (scores, dP, dS).
  enum class GradLayout {
    QueryTiled,   ///< output indexed by query (dQ): tiles of queries
    KeyTiled,     ///< output indexed by key (dK, dV): tiles of keys
    BatchReduced, ///< random R: tiles of queries, the batch reduced inside
    Materialized, ///< the rest: dS stored per batch and head
  };

  /// Recomputed forward scores, all Funcs in Halide order (j, i, h, b).
  struct ScoreFuncs {
    /// The mixed score of query i and key j (masks not applied).
    Func mixed;
    /// Each part's unmixed score (for the mixture logits' gradient).
    std::vector<Func> parts;
    /// Reductions and copies evaluated per tile of (keys x queries).
    std::vector<Func> tile;
    /// Per-query or small Funcs, computed once (MLP hidden layers, weights).
    std::vector<Func> rows;
    /// Operands transposed so that products vectorize over keys: computed
    /// once per (batch, head), not per tile.
    std::vector<Func> transposes;
    /// Dense and factorized-dense internals per part (undefined otherwise).
    std::vector<Func> pre, hidden, fa, fb;
  };

  Var gj_{"gj"}, gi_{"gi"}, gh_{"gh"}, gb_{"gb"};

  /// The score Funcs of `op`'s parts, named with `tag`.
  ScoreFuncs buildScores(const OpSpec &op, const std::string &tag) {
    ScoreFuncs sf;
    Var j = gj_, i = gi_, h = gh_, b = gb_;
    size_t n = op.parts.size();
    sf.pre.resize(n);
    sf.hidden.resize(n);
    sf.fa.resize(n);
    sf.fb.resize(n);
    Func alpha;
    if (n > 1) {
      const TensorFunc &logits = value(op.logits);
      RDom r(0, static_cast<int>(n), tag + "_mix_r");
      Var mh("mh"), mm("mm");
      Func mx(tag + "_mix_max"), den(tag + "_mix_den");
      mx(mh) = Halide::maximum(at(logits, {mh, r}));
      den(mh) = Halide::sum(Halide::exp(at(logits, {mh, r}) - mx(mh)));
      alpha = Func(tag + "_mix_alpha");
      alpha(mm, mh) = Halide::exp(at(logits, {mh, mm}) - mx(mh)) / den(mh);
      sf.rows.push_back(alpha);
      mixAlpha_ = alpha;
    }
    Expr total;
    for (size_t p = 0; p < n; ++p) {
      const ScorePartSpec &part = op.parts[p];
      auto operand = [&](size_t k) -> const TensorFunc & {
        return value(part.operands.at(k));
      };
      std::string ptag = absl::StrCat(tag, "_p", p);
      Func score(ptag + "_score");
      switch (part.kind) {
      case ScoreKind::Dot: {
        const TensorFunc &q = operand(0), &k = operand(1);
        Var r_("dr");
        Func kT(ptag + "_keys_t");
        kT(j, r_, h, b) = at(k, {b, h, j, r_});
        RDom r(0, static_cast<int>(q.dim(3)), ptag + "_r");
        Func s(ptag + "_dot");
        s(j, i, h, b) = 0.0f;
        s(j, i, h, b) += at(q, {b, h, i, r}) * kT(j, r, h, b);
        sf.transposes.push_back(kT);
        sf.tile.push_back(s);
        score(j, i, h, b) = s(j, i, h, b) * part.scale;
        break;
      }
      case ScoreKind::Random:
        score(j, i, h, b) = at(operand(0), {h, i, j});
        break;
      case ScoreKind::FactorizedRandom: {
        const TensorFunc &r1 = operand(0), &r2 = operand(1);
        RDom r(0, static_cast<int>(r1.dim(2)), ptag + "_r");
        Func s(ptag + "_factorized");
        s(j, i, h) = 0.0f;
        s(j, i, h) += at(r1, {h, i, r}) * at(r2, {h, j, r});
        sf.rows.push_back(s); // [heads, N, M]: batch-independent
        score(j, i, h, b) = s(j, i, h);
        break;
      }
      case ScoreKind::Dense:
      case ScoreKind::FactorizedDense: {
        const TensorFunc &x = operand(0), &w1 = operand(1), &b1 = operand(2);
        Var kk("hk");
        RDom r(0, static_cast<int>(x.dim(2)), ptag + "_hr");
        Func pre(ptag + "_pre");
        pre(kk, i, h, b) = at(b1, {h, kk});
        pre(kk, i, h, b) += at(x, {b, i, r}) * at(w1, {h, r, kk});
        Func hid(ptag + "_hidden");
        hid(kk, i, h, b) = Halide::max(pre(kk, i, h, b), 0.0f);
        sf.pre[p] = pre;
        sf.hidden[p] = hid;
        sf.rows.push_back(pre);
        sf.rows.push_back(hid);
        RDom rk(0, static_cast<int>(w1.dim(2)), ptag + "_kr");
        if (part.kind == ScoreKind::Dense) {
          const TensorFunc &w2 = operand(3), &b2 = operand(4);
          Func s(ptag + "_dense");
          s(j, i, h, b) = at(b2, {h, j});
          s(j, i, h, b) += hid(rk, i, h, b) * at(w2, {h, rk, j});
          sf.tile.push_back(s);
          score(j, i, h, b) = s(j, i, h, b);
          break;
        }
        const TensorFunc &wa = operand(3), &ba = operand(4), &wb = operand(5),
                         &bb = operand(6);
        int bw = static_cast<int>(wb.dim(2));
        Var pp("fp");
        Func fa(ptag + "_a"), fb(ptag + "_b");
        fa(pp, i, h, b) = at(ba, {h, pp});
        fa(pp, i, h, b) += hid(rk, i, h, b) * at(wa, {h, rk, pp});
        fb(pp, i, h, b) = at(bb, {h, pp});
        fb(pp, i, h, b) += hid(rk, i, h, b) * at(wb, {h, rk, pp});
        sf.fa[p] = fa;
        sf.fb[p] = fb;
        sf.rows.push_back(fa);
        sf.rows.push_back(fb);
        score(j, i, h, b) = fa(j / bw, i, h, b) * fb(j % bw, i, h, b);
        break;
      }
      }
      sf.parts.push_back(score);
      Expr term = n > 1 ? alpha(static_cast<int>(p), h) * score(j, i, h, b)
                        : score(j, i, h, b);
      total = total.defined() ? total + term : term;
    }
    sf.mixed = Func(tag + "_mixed");
    sf.mixed(j, i, h, b) = total;
    return sf;
  }

  /// Whether key j is visible to query i of batch b.
  Expr visible(const OpSpec &op, Expr j, Expr i, Expr b) {
    Expr ok = Halide::Internal::const_true();
    if (op.causal) {
      ok = j <= i;
    }
    if (op.keyMask >= 0) {
      ok = ok && at(value(op.keyMask), {b, j}) != 0;
    }
    return ok;
  }

  /// synth.attention_stats: lse[b, h, i] over the visible keys, per tile of
  /// queries (the score tile is the only N-sized scratch).
  Func emitAttentionStats(const OpSpec &op, const std::vector<Var> &v) {
    std::string tag = absl::StrCat("st", op.result);
    ScoreFuncs sf = buildScores(op, tag);
    int keys = static_cast<int>(value(op.values).dim(2));
    Var j = gj_, i = gi_, h = gh_, b = gb_;
    Func masked(tag + "_masked");
    masked(j, i, h, b) = Halide::select(visible(op, j, i, b),
                                        sf.mixed(j, i, h, b), kMaskedScore);
    RDom rj(0, keys, tag + "_j");
    Func mx(tag + "_max");
    mx(i, h, b) = kMaskedScore;
    mx(i, h, b) = Halide::max(mx(i, h, b), masked(rj, i, h, b));
    Func sum(tag + "_sum");
    sum(i, h, b) = 0.0f;
    sum(i, h, b) +=
        Halide::select(visible(op, rj, i, b),
                       Halide::exp(masked(rj, i, h, b) - mx(i, h, b)), 0.0f);
    Func out(tag + "_lse");
    // A row without visible keys: +huge, so that every weight is exp(-huge).
    out(i, h, b) =
        Halide::select(sum(i, h, b) > 0.0f,
                       mx(i, h, b) + Halide::log(sum(i, h, b)), -kMaskedScore);
    Func f(absl::StrCat("attention_stats_", op.result));
    define(f, v, out(v[2], v[1], v[0]));
    statsFuncs_ = StatsFuncs{out, masked, mx, sum, sf, rj};
    hasStats_ = true;
    return f;
  }

  /// synth.fused_attention_grad: the gradient of one operand.
  Func emitAttentionGrad(const OpSpec &op, const std::vector<Var> &v) {
    std::string tag = absl::StrCat("ag", op.result);
    ScoreFuncs sf = buildScores(op, tag);
    const TensorFunc &values = value(op.values);
    const TensorFunc &out = value(op.output);
    const TensorFunc &dout = value(op.dOutput);
    const TensorFunc &lse = value(op.rowStats);
    int batch = static_cast<int>(values.dim(0));
    int keys = static_cast<int>(values.dim(2));
    int headDim = static_cast<int>(values.dim(3));
    int queries = static_cast<int>(out.dim(2));
    Var j = gj_, i = gi_, h = gh_, b = gb_, c("gc");

    // P, dP = dO V^T, D = rowsum(dO * O), dS = P (dP - D).
    Func prob(tag + "_p");
    prob(j, i, h, b) = Halide::select(
        visible(op, j, i, b),
        Halide::exp(sf.mixed(j, i, h, b) - at(lse, {b, h, i})), 0.0f);
    Func vT(tag + "_values_t");
    Var e("ge");
    vT(j, e, h, b) = at(values, {b, h, j, e});
    RDom re(0, headDim, tag + "_e");
    Func dP(tag + "_dp");
    dP(j, i, h, b) = 0.0f;
    dP(j, i, h, b) += at(dout, {b, h, i, re}) * vT(j, re, h, b);
    Func delta(tag + "_delta");
    delta(i, h, b) = 0.0f;
    delta(i, h, b) += at(dout, {b, h, i, re}) * at(out, {b, h, i, re});
    Func dS(tag + "_ds");
    dS(j, i, h, b) = prob(j, i, h, b) * (dP(j, i, h, b) - delta(i, h, b));
    sf.rows.push_back(delta);

    // Which operand: (part, operand of the part), the logits, or the values.
    int nScore = 0;
    for (const ScorePartSpec &part : op.parts) {
      nScore += static_cast<int>(part.operands.size());
    }
    int part = -1, local = -1;
    for (int p = 0, first = 0; p < static_cast<int>(op.parts.size()); ++p) {
      int count = static_cast<int>(op.parts[p].operands.size());
      if (op.wrt >= first && op.wrt < first + count) {
        part = p;
        local = op.wrt - first;
      }
      first += count;
    }
    bool wrtLogits = op.logits >= 0 && op.wrt == nScore;
    size_t numParts = op.parts.size();
    auto weight = [&](int p) -> Expr {
      return numParts > 1 ? mixAlpha_(p, h) : Expr(1.0f);
    };
    Func f(absl::StrCat("fused_attention_grad_", op.result));
    // A factor applied after the reduction (the dot scale, the mixture
    // weight).
    Expr scaleOutput;
    GradLayout layout = GradLayout::Materialized;
    Var tileVar = i;
    RDom red;

    if (part < 0 && !wrtLogits) {
      // Values: dV[j] = sum_i P[i, j] dO[i].
      red = RDom(0, queries, tag + "_i");
      if (op.causal) {
        red.where(red.x >= j); // later queries only
      }
      f(c, j, h, b) = 0.0f;
      f(c, j, h, b) += prob(j, red, h, b) * at(dout, {b, h, red, c});
      layout = GradLayout::KeyTiled;
      tileVar = j;
    } else if (wrtLogits) {
      // a -> alpha = softmax(a): da_m = alpha_m (G_m - sum_n alpha_n G_n)
      // with G_m = sum dS * S_m.
      RDom r(0, keys, 0, queries, 0, batch, tag + "_all");
      Var m("gm");
      Expr partScore = sf.parts.back()(r.x, r.y, h, r.z);
      for (int p = static_cast<int>(numParts) - 2; p >= 0; --p) {
        partScore =
            Halide::select(m == p, sf.parts[p](r.x, r.y, h, r.z), partScore);
      }
      Func g(tag + "_g");
      g(m, h) = 0.0f;
      g(m, h) += dS(r.x, r.y, h, r.z) * partScore;
      RDom rm(0, static_cast<int>(numParts), tag + "_m");
      Func mean(tag + "_gmean");
      mean(h) = Halide::sum(mixAlpha_(rm, h) * g(rm, h));
      f(m, h) = mixAlpha_(m, h) * (g(m, h) - mean(h));
      sf.rows.push_back(g);
      sf.rows.push_back(mean);
    } else {
      const ScorePartSpec &ps = op.parts[part];
      auto operand = [&](size_t k) -> const TensorFunc & {
        return value(ps.operands.at(k));
      };
      Expr w = weight(part);
      switch (ps.kind) {
      case ScoreKind::Dot: {
        const TensorFunc &q = operand(0), &k = operand(1);
        if (local == 0) { // dQ[i] = scale sum_j dS[i, j] K[j]
          red = RDom(0, keys, tag + "_j");
          if (op.causal) {
            red.where(red.x <= i); // visible keys only
          }
          f(c, i, h, b) = 0.0f;
          f(c, i, h, b) += dS(red, i, h, b) * at(k, {b, h, red, c});
          layout = GradLayout::QueryTiled;
          tileVar = i;
        } else { // dK[j] = scale sum_i dS[i, j] Q[i]
          red = RDom(0, queries, tag + "_i");
          if (op.causal) {
            red.where(red.x >= j);
          }
          f(c, j, h, b) = 0.0f;
          f(c, j, h, b) += dS(j, red, h, b) * at(q, {b, h, red, c});
          layout = GradLayout::KeyTiled;
          tileVar = j;
        }
        scaleOutput = w * ps.scale;
        break;
      }
      case ScoreKind::Random: {
        // dR[h, i, j] = sum_b dS (rows and columns beyond N x M: 0).
        red = RDom(0, batch, tag + "_b");
        Expr inside = i < queries && j < keys;
        Expr jc = Halide::min(j, keys - 1), ic = Halide::min(i, queries - 1);
        f(j, i, h) = 0.0f;
        f(j, i, h) += Halide::select(inside, dS(jc, ic, h, red), 0.0f);
        layout = GradLayout::BatchReduced;
        tileVar = i;
        scaleOutput = w;
        break;
      }
      case ScoreKind::FactorizedRandom: {
        const TensorFunc &r1 = operand(0), &r2 = operand(1);
        RDom rb(0, batch, tag + "_b");
        Func gsum(tag + "_gsum");
        gsum(j, i, h) = 0.0f;
        gsum(j, i, h) += dS(j, i, h, rb);
        sf.rows.push_back(gsum);
        if (local == 0) { // dR1[i] = sum_j G[i, j] R2[j]
          RDom rj(0, keys, tag + "_j");
          Expr ic = Halide::min(i, queries - 1);
          f(c, i, h) = Halide::select(
              i < queries, Halide::sum(gsum(rj, ic, h) * at(r2, {h, rj, c})),
              0.0f);
        } else { // dR2[j] = sum_i G[i, j] R1[i]
          RDom ri(0, queries, tag + "_i");
          Expr jc = Halide::min(j, keys - 1);
          f(c, j, h) = Halide::select(
              j < keys, Halide::sum(gsum(jc, ri, h) * at(r1, {h, ri, c})),
              0.0f);
        }
        scaleOutput = w;
        break;
      }
      case ScoreKind::Dense:
      case ScoreKind::FactorizedDense: {
        // The mixture weight goes inside: x's gradient sums over heads.
        Func weighted(tag + "_ds_weighted");
        weighted(j, i, h, b) = w * dS(j, i, h, b);
        emitSynthesizerGrad(op, ps, part, local, sf, weighted, f, tag, keys,
                            queries, batch);
        break;
      }
      }
    }
    Func result(absl::StrCat("attention_grad_", op.result));
    std::vector<Var> fv = f.args();
    std::vector<Expr> fargs(fv.begin(), fv.end());
    Expr scaled = scaleOutput.defined() ? f(fargs) * scaleOutput : f(fargs);
    result(fv) = scaled;
    Func wrapped(absl::StrCat("fused_attention_grad_out_", op.result));
    std::vector<Expr> rowMajor(v.begin(), v.end());
    std::reverse(rowMajor.begin(), rowMajor.end());
    std::vector<Var> rv(v.rbegin(), v.rend());
    wrapped(rv) = result(rowMajor);
    attentionGrad_ = AttentionGradFuncs{f,  result, layout, tileVar, red,
                                        dS, dP,     vT,     sf,      prob};
    hasAttentionGrad_ = true;
    return wrapped;
  }

  /// Gradients of the dense and factorized-dense synthesizers' operands:
  /// x, W1, b1, then W2, b2 (dense) or WA, bA, WB, bB (factorized).
  void emitSynthesizerGrad(const OpSpec &op, const ScorePartSpec &ps, int part,
                           int local, ScoreFuncs &sf, Func dS, Func &f,
                           const std::string &tag, int keys, int queries,
                           int batch) {
    Var j = gj_, i = gi_, h = gh_, b = gb_, c("gc"), k("gk");
    auto operand = [&](size_t n) -> const TensorFunc & {
      return value(ps.operands.at(n));
    };
    const TensorFunc &x = operand(0), &w1 = operand(1);
    Func hid = sf.hidden[part], pre = sf.pre[part];
    RDom bi(0, queries, 0, batch, tag + "_bi");
    int hidden = static_cast<int>(w1.dim(2));
    // Gradient of the hidden layer (before relu), per query.
    Func dHid(tag + "_dhidden");
    Func dA(tag + "_da"), dB(tag + "_db");
    if (ps.kind == ScoreKind::Dense) {
      const TensorFunc &w2 = operand(3);
      if (local == 3) { // dW2[h, k, j]
        Expr jc = Halide::min(j, keys - 1);
        f(j, k, h) = 0.0f;
        f(j, k, h) += Halide::select(
            j < keys, hid(k, bi.x, h, bi.y) * dS(jc, bi.x, h, bi.y), 0.0f);
        return;
      }
      if (local == 4) { // db2[h, j]
        Expr jc = Halide::min(j, keys - 1);
        f(j, h) = 0.0f;
        f(j, h) += Halide::select(j < keys, dS(jc, bi.x, h, bi.y), 0.0f);
        return;
      }
      RDom rj(0, keys, tag + "_j");
      // W2 transposed, so the sum vectorizes over the hidden units.
      Func w2T(tag + "_w2_t");
      w2T(k, j, h) = at(w2, {h, k, j});
      sf.rows.push_back(w2T);
      dHid(k, i, h, b) =
          Halide::select(pre(k, i, h, b) > 0.0f,
                         Halide::sum(dS(rj, i, h, b) * w2T(k, rj, h)), 0.0f);
    } else {
      const TensorFunc &wa = operand(3), &wb = operand(5);
      int aw = static_cast<int>(wa.dim(2)), bw = static_cast<int>(wb.dim(2));
      Func fa = sf.fa[part], fb = sf.fb[part];
      Var pp("gp");
      RDom rq(0, bw, tag + "_q"), rp(0, aw, tag + "_pa");
      Expr jq = pp * bw + rq, jp = rp * bw + pp;
      dA(pp, i, h, b) = Halide::sum(
          Halide::select(jq < keys, dS(Halide::min(jq, keys - 1), i, h, b),
                         0.0f) *
          fb(rq, i, h, b));
      dB(pp, i, h, b) = Halide::sum(
          Halide::select(jp < keys, dS(Halide::min(jp, keys - 1), i, h, b),
                         0.0f) *
          fa(rp, i, h, b));
      sf.rows.push_back(dA);
      sf.rows.push_back(dB);
      if (local >= 3) {
        Func d = local <= 4 ? dA : dB;
        if (local == 3 || local == 5) { // dWA[h, k, p], dWB[h, k, q]
          f(pp, k, h) = 0.0f;
          f(pp, k, h) += hid(k, bi.x, h, bi.y) * d(pp, bi.x, h, bi.y);
        } else { // dbA[h, p], dbB[h, q]
          f(pp, h) = 0.0f;
          f(pp, h) += d(pp, bi.x, h, bi.y);
        }
        return;
      }
      RDom ra(0, aw, tag + "_ra"), rb2(0, bw, tag + "_rb");
      dHid(k, i, h, b) = Halide::select(
          pre(k, i, h, b) > 0.0f,
          Halide::sum(dA(ra, i, h, b) * at(wa, {h, k, ra})) +
              Halide::sum(dB(rb2, i, h, b) * at(wb, {h, k, rb2})),
          0.0f);
    }
    sf.rows.push_back(dHid);
    if (local == 0) { // dx[b, i, c] = sum_{h, k} dHid W1[h, c, k]
      RDom hk(0, hidden, 0, static_cast<int>(w1.dim(0)), tag + "_hk");
      f(c, i, b) = 0.0f;
      // W1 transposed, so the product vectorizes over the model dimension.
      Func w1T(tag + "_w1_t");
      w1T(c, k, h) = at(w1, {h, c, k});
      sf.rows.push_back(w1T);
      f(c, i, b) += dHid(hk.x, i, hk.y, b) * w1T(c, hk.x, hk.y);
    } else if (local == 1) { // dW1[h, c, k] = sum_{b, i} x[b, i, c] dHid
      f(k, c, h) = 0.0f;
      f(k, c, h) += at(x, {bi.y, bi.x, c}) * dHid(k, bi.x, h, bi.y);
    } else { // db1[h, k]
      f(k, h) = 0.0f;
      f(k, h) += dHid(k, bi.x, h, bi.y);
    }
  }

  void scheduleStats() {
    StatsFuncs &s = statsFuncs_;
    Var io("sio"), ii("sii");
    int width = vectorWidth(16);
    s.out.compute_root().split(gi_, io, ii, field("stats_query_tile"),
                               Halide::TailStrategy::GuardWithIf);
    if (parallelOn()) {
      parallel(s.out, gb_);
      parallel(s.out, gh_);
    }
    // One tile of scores per tile of queries; the row max and sum read it.
    s.masked.compute_at(s.out, io).vectorize(gj_, width,
                                             Halide::TailStrategy::GuardWithIf);
    for (Func f : s.scores.tile) {
      scheduleTileFunc(f, s.out, io);
    }
    for (Func f : s.scores.transposes) {
      f.compute_at(s.out, gh_)
          .vectorize(f.args()[0], width, Halide::TailStrategy::GuardWithIf);
    }
    for (Func f : s.scores.rows) {
      scheduleRowFunc(f);
    }
    for (Func f : {s.mx, s.sum}) {
      f.compute_at(s.out, io);
    }
  }

  /// A per-tile Func of (key, query, ...): vectorized over keys; a
  /// reduction (scores, dP) keeps a block of one vector of keys x
  /// score_query_block queries in registers while its reduction runs
  /// innermost.
  void scheduleTileFunc(Func f, Func at, Var level) {
    int width = vectorWidth(16);
    f.compute_at(at, level).vectorize(f.args()[0], width,
                                      Halide::TailStrategy::GuardWithIf);
    if (f.has_update_definition()) {
      std::vector<Var> args = f.args();
      std::vector<Halide::RVar> rvars = f.rvars(0);
      Var jo("tjo"), ji("tji"), io("tio"), ii("tii");
      std::vector<Halide::VarOrRVar> order = {ji, ii};
      for (const Halide::RVar &r : rvars) {
        order.push_back(r);
      }
      // Query blocks inside key blocks: a block of keys (one vector of the
      // transposed operand per reduction step) is reused from L1 by every
      // query of the tile.
      order.push_back(io);
      order.push_back(jo);
      f.update()
          .split(args[0], jo, ji, width, Halide::TailStrategy::GuardWithIf)
          .split(args[1], io, ii, field("score_query_block"),
                 Halide::TailStrategy::GuardWithIf)
          .reorder(order)
          .vectorize(ji)
          .unroll(ii);
    }
  }

  void scheduleRowFunc(Func f) {
    f.compute_root();
    if (f.dimensions() > 0) {
      int width = vectorWidth(16);
      f.vectorize(f.args()[0], width, Halide::TailStrategy::GuardWithIf);
      if (f.has_update_definition()) {
        f.update().vectorize(f.args()[0], width,
                             Halide::TailStrategy::GuardWithIf);
      }
      if (f.dimensions() > 1 && parallelOn()) {
        // Every update here keeps all pure variables on its left-hand side,
        // so its outermost one is parallel too.
        parallel(f, f.args().back());
        if (f.has_update_definition()) {
          parallel(f.update(), f.args().back());
        }
      }
    }
  }

  void scheduleAttentionGrad() {
    AttentionGradFuncs &g = attentionGrad_;
    int width = vectorWidth(16);
    for (Func f : g.scores.rows) {
      scheduleRowFunc(f);
    }
    g.result.compute_root();
    std::vector<Var> args = g.f.args();
    g.f.compute_root();
    Var to("gto"), ti("gti");
    std::vector<Func> tileFuncs = g.scores.tile;
    tileFuncs.push_back(g.dP);
    std::vector<Func> transposes = g.scores.transposes;
    transposes.push_back(g.vT);
    // Transposed operands once per (batch, head) where the output has those
    // loops, else once for the kernel.
    auto scheduleTransposes = [&](bool perHead) {
      for (Func f : transposes) {
        if (perHead) {
          f.compute_at(g.f, args[2]);
        } else {
          f.compute_root();
          if (parallelOn()) {
            parallel(f, f.args().back());
          }
        }
        f.vectorize(f.args()[0], width, Halide::TailStrategy::GuardWithIf);
      }
    };
    switch (g.layout) {
    case GradLayout::QueryTiled:
    case GradLayout::KeyTiled: {
      // Tiles of grad_tile output rows (queries for dQ, keys for dK and dV)
      // with the tile's scores, dP and dS; inside, grad_row_block rows x the
      // head dimension accumulate in registers while the reduction (keys for
      // dQ, queries for dK and dV) runs.
      Var tio("gtio"), tii("gtii"), co("gco"), ci("gci");
      g.result.compute_root()
          .split(g.tileVar, to, ti, field("grad_tile"),
                 Halide::TailStrategy::GuardWithIf)
          .split(ti, tio, tii, field("grad_row_block"),
                 Halide::TailStrategy::GuardWithIf)
          .reorder(args[0], tii, tio, to, args[2], args[3])
          .vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
      if (parallelOn()) {
        parallel(g.result, args[3]);
        parallel(g.result, args[2]);
      }
      g.f.compute_at(g.result, tio)
          .vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
      g.f.update()
          .split(args[0], co, ci, width, Halide::TailStrategy::GuardWithIf)
          .reorder(ci, co, g.tileVar, g.red.x)
          .vectorize(ci)
          .unroll(co)
          .unroll(g.tileVar);
      for (Func f : tileFuncs) {
        scheduleTileFunc(f, g.result, to);
      }
      for (Func f : transposes) {
        f.compute_at(g.result, args[2])
            .vectorize(f.args()[0], width, Halide::TailStrategy::GuardWithIf);
      }
      g.dS.compute_at(g.result, to)
          .vectorize(gj_, width, Halide::TailStrategy::GuardWithIf);
      if (g.layout == GradLayout::KeyTiled) {
        g.prob.compute_at(g.result, to)
            .vectorize(gj_, width, Halide::TailStrategy::GuardWithIf);
      }
      break;
    }
    case GradLayout::BatchReduced: {
      Halide::Stage u = g.f.update();
      u.split(g.tileVar, to, ti, field("grad_batch_tile"),
              Halide::TailStrategy::GuardWithIf)
          .reorder(args[0], ti, g.red.x, to, args[2])
          .vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
      if (parallelOn()) {
        parallel(u, args[2]);
      }
      for (Func f : tileFuncs) {
        scheduleTileFunc(f, g.f, to);
      }
      scheduleTransposes(false);
      g.dS.compute_at(g.f, to).vectorize(gj_, width,
                                         Halide::TailStrategy::GuardWithIf);
      break;
    }
    case GradLayout::Materialized: {
      // dS and what it needs are stored for the whole batch; reductions
      // keep register blocks like the tiled layouts.
      scheduleTransposes(false);
      for (Func f : tileFuncs) {
        f.compute_root().vectorize(f.args()[0], width,
                                   Halide::TailStrategy::GuardWithIf);
        if (parallelOn()) {
          parallel(f, f.args().back());
        }
        if (f.has_update_definition()) {
          std::vector<Var> fa = f.args();
          std::vector<Halide::RVar> rvars = f.rvars(0);
          Var jo("mjo"), ji("mji"), io("mio"), ii("mii");
          std::vector<Halide::VarOrRVar> order = {ji, ii};
          order.insert(order.end(), rvars.begin(), rvars.end());
          order.push_back(io);
          order.push_back(jo);
          for (size_t d = 2; d < fa.size(); ++d) {
            order.push_back(fa[d]);
          }
          Halide::Stage u = f.update();
          u.split(fa[0], jo, ji, width, Halide::TailStrategy::GuardWithIf)
              .split(fa[1], io, ii, field("score_query_block"),
                     Halide::TailStrategy::GuardWithIf)
              .reorder(order)
              .vectorize(ji)
              .unroll(ii);
          if (parallelOn()) {
            parallel(u, fa.back());
          }
        }
      }
      g.dS.compute_root().vectorize(gj_, width,
                                    Halide::TailStrategy::GuardWithIf);
      if (parallelOn()) {
        parallel(g.dS, gb_);
      }
      if (g.f.has_update_definition()) {
        Halide::Stage u = g.f.update();
        u.vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
        if (args.size() > 1 && parallelOn()) {
          parallel(u, args.back());
        }
      }
      break;
    }
    }
  }

  void emitAttention(const OpSpec &op, Func &out, const std::vector<Var> &v) {
    const TensorFunc &values = value(op.values);
    int keys = static_cast<int>(values.shape[2]);
    int tile = static_cast<int>(std::min<int64_t>(keys, field("key_tile")));
    int numTiles = (keys + tile - 1) / tile;
    attentionKeyTile_ = tile;

    Var b("ab"), h("ah"), i("ai"), e("ae"), t("at"), jj("ajj");
    // Mixed, masked score of query (b, h, i) and key j.
    auto score = [&](Expr kb, Expr kh, Expr ki, Expr kj) {
      Expr s;
      if (op.parts.size() == 1) {
        s = partScore(op.parts[0], 0, kb, kh, ki, kj, op);
      } else {
        // alpha = softmax over the per-head mixture logits.
        if (!mixWeights_.defined()) {
          const TensorFunc &logits = value(op.logits);
          int m = static_cast<int>(logits.shape[1]);
          RDom r(0, m, "mix_r");
          Var mh("mh"), mm("mm");
          Func mx("mix_max"), denom("mix_denom");
          mx(mh) = Halide::maximum(at(logits, {mh, r}));
          denom(mh) = Halide::sum(Halide::exp(at(logits, {mh, r}) - mx(mh)));
          mixWeights_ = Func("mix_weights");
          mixWeights_(mm, mh) =
              Halide::exp(at(logits, {mh, mm}) - mx(mh)) / denom(mh);
          roots_.push_back(mixWeights_);
        }
        for (size_t p = 0; p < op.parts.size(); ++p) {
          Expr term = mixWeights_(static_cast<int>(p), kh) *
                      partScore(op.parts[p], p, kb, kh, ki, kj, op);
          s = s.defined() ? s + term : term;
        }
      }
      return s;
    };
    Expr key = t * tile + jj;
    Expr safeKey = Halide::min(key, keys - 1);
    Expr valid = key < keys;
    if (op.causal) {
      // Query i sits at absolute position query_offset + i.
      Expr offset = op.position >= 0 ? at(value(op.position), {}) : Expr(0);
      valid = valid && key <= i + offset;
    }
    if (op.keyMask >= 0) {
      valid = valid && at(value(op.keyMask), {b, safeKey}) != 0;
    }
    // Scores of one key tile for every query of the current query tile.
    Func tileScores("tile_scores");
    tileScores(jj, t, i, h, b) =
        Halide::select(valid, score(b, h, i, safeKey), kMaskedScore);
    RDom rk(0, tile, "rk");
    // Row max and sum of the tile as explicit reductions, so the schedule can
    // vectorize them across keys (rfactor).
    Func tileMax("tile_max");
    tileMax(t, i, h, b) = kMaskedScore;
    tileMax(t, i, h, b) =
        Halide::max(tileMax(t, i, h, b), tileScores(rk, t, i, h, b));
    Func prob("tile_prob");
    prob(jj, t, i, h, b) = Halide::select(
        tileScores(jj, t, i, h, b) > kMaskedScore * 0.5f,
        Halide::exp(tileScores(jj, t, i, h, b) - tileMax(t, i, h, b)), 0.0f);
    Func tileSum("tile_sum");
    tileSum(t, i, h, b) = 0.0f;
    tileSum(t, i, h, b) += prob(rk, t, i, h, b);
    // P V of the tile: the reduction (computed per register block) and the
    // tile it fills.
    Func tileProduct("tile_pv");
    tileProduct(e, t, i, h, b) = 0.0f;
    tileProduct(e, t, i, h, b) +=
        prob(rk, t, i, h, b) *
        at(values, {b, h, Halide::min(t * tile + rk, keys - 1), e});
    Func tileValues("tile_values");
    tileValues(e, t, i, h, b) = tileProduct(e, t, i, h, b);

    // Online softmax state over key tiles: running max, sum, and sum of
    // probability-weighted values, merged tile by tile.
    Func state("attention_state");
    RDom kt(0, numTiles, "kt");
    Func result("attention_out");
    Var si("asi"), sq("asq");
    std::vector<Var> stateVars;
    Expr query; // the query a state element belongs to
    if (op.causal) {
      // Causal: the state is indexed by query tile (sq) and query in the tile
      // (si), so that the key tiles past the tile's last query, fully
      // masked, are skipped: the key-tile loop's bound depends on the query
      // tile alone, and nothing of those tiles is computed.
      int queries = static_cast<int>(spec_.values[op.result].shape[2]);
      int queryTile =
          static_cast<int>(std::min<int64_t>(queries, field("query_tile")));
      attentionQueryTile_ = queryTile;
      Expr offset = op.position >= 0 ? at(value(op.position), {}) : Expr(0);
      kt.where(kt * tile <= sq * queryTile + (queryTile - 1) + offset);
      query = Halide::min(sq * queryTile + si, queries - 1);
      stateVars = {e, si, sq, h, b};
    } else {
      query = i;
      stateVars = {e, i, h, b};
    }
    std::vector<Expr> at_(stateVars.begin(), stateVars.end());
    state(at_) = Halide::Tuple(kMaskedScore, 0.0f, 0.0f);
    Expr mOld = state(at_)[0];
    Expr tm = tileMax(kt, query, h, b);
    Expr mNew = Halide::max(mOld, tm);
    // One of the two rescalings is exp(0) = 1: one exp per state element.
    Expr grew = tm > mOld;
    Expr ratio = Halide::exp(Halide::min(mOld, tm) - mNew);
    Expr aOld = Halide::select(grew, ratio, 1.0f);
    Expr aTile = Halide::select(grew, 1.0f, ratio);
    state(at_) = Halide::Tuple(
        mNew, state(at_)[1] * aOld + tileSum(kt, query, h, b) * aTile,
        state(at_)[2] * aOld + tileValues(e, kt, query, h, b) * aTile);
    std::vector<Expr> from = {e, i, h, b};
    if (op.causal) {
      from = {e, i % attentionQueryTile_, i / attentionQueryTile_, h, b};
    }
    Expr l = state(from)[1];
    result(e, i, h, b) = Halide::select(l > 0.0f, state(from)[2] / l, 0.0f);
    define(out, v, result(v[3], v[2], v[1], v[0]));

    attention_ = AttentionFuncs{result,
                                state,
                                tileScores,
                                tileMax,
                                prob,
                                tileSum,
                                tileValues,
                                tileProduct,
                                kt,
                                rk,
                                e,
                                i,
                                h,
                                b,
                                t,
                                jj,
                                op.causal ? si : i};
    hasAttention_ = true;
  }

  //===--------------------------------------------------------------------===//
  // Schedule
  //===--------------------------------------------------------------------===//

  /// An integer field of the schedule (checked against passes/CpuSchedule.h
  /// before code generation; a missing one is a Halide-side error).
  int field(const char *name) const {
    return static_cast<int>(sched_.integer(name));
  }
  const std::string &choice(const char *name) const {
    return sched_.choice(name);
  }
  bool parallelOn() const { return choice("parallel") != "none"; }

  /// `loop` on the thread pool, parallel_task iterations per task.
  template <typename Schedulable>
  void parallel(Schedulable &&s, Halide::VarOrRVar loop) {
    int task = field("parallel_task");
    if (task > 1) {
      s.parallel(loop, task, Halide::TailStrategy::GuardWithIf);
    } else {
      s.parallel(loop);
    }
  }

  /// The schedule's vector width, halved while wider than `extent`.
  int vectorWidth(int64_t extent) const {
    int width = std::max(1, field("vector_width"));
    while (width > 1 && width > extent) {
      width /= 2;
    }
    return width;
  }

  /// Parallel over the outermost dimension, vectorized along the innermost.
  /// A layer norm prologue read by `mm`: its normalized rows computed per
  /// row block of the product (`block`, at `rows`) or stored whole first
  /// (`root`; also when more than one product reads it), its row statistics
  /// per row of it or stored first (row_stats_at).
  void schedulePrologue(Func f, Halide::LoopLevel rows) {
    // Each prologue once, however many products read it.
    if (!f.defined() || !scheduledPrologues_.insert(f.name()).second) {
      return;
    }
    int readers = 0;
    for (const auto &mm : matmuls_) {
      readers += mm.prologue.defined() && mm.prologue.name() == f.name();
    }
    std::vector<Var> args = f.args();
    if (choice("prologue_at") == "block" && readers == 1) {
      f.compute_at(rows);
    } else {
      f.compute_root();
      if (args.size() > 1 && parallelOn()) {
        parallel(f, args.back());
      }
    }
    f.vectorize(args[0], vectorWidth(values_shape(f).back()),
                Halide::TailStrategy::GuardWithIf);
    bool perRow = choice("row_stats_at") == "row" && args.size() > 1;
    for (auto &[stat, out] : prologueStats_) {
      if (out.name() == f.name()) {
        perRow ? stat.compute_at(f, args[1]) : stat.compute_root();
      }
    }
    // Each row sum in vector_width partial sums, added up at the end (a
    // serial sum of one row would wait on the adder's latency at every step).
    int lanes = vectorWidth(values_shape(f).back());
    int index = 0;
    for (PrologueSum &ps : prologueSums_) {
      if (ps.out.name() != f.name()) {
        continue;
      }
      perRow ? ps.sum.compute_at(f, args[1]) : ps.sum.compute_root();
      if (lanes > 1) {
        Halide::RVar outer(absl::StrCat(ps.sum.name(), "_ro")),
            inner(absl::StrCat(ps.sum.name(), "_ri"));
        Var lane(absl::StrCat(ps.sum.name(), "_lane", index++));
        Func partial = ps.sum.update()
                           .split(ps.r.x, outer, inner, lanes,
                                  Halide::TailStrategy::GuardWithIf)
                           .rfactor(inner, lane);
        partial.compute_at(ps.sum, Halide::Var::outermost()).vectorize(lane);
        partial.update().vectorize(lane);
      }
    }
  }

  void scheduleOutput(Func f, const std::vector<int64_t> &shape) {
    f.compute_root();
    if (shape.empty()) {
      return;
    }
    std::vector<Var> args = f.args();
    int width = vectorWidth(shape.back());
    if (width > 1) {
      f.vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
    }
    if (shape.size() > 1 && parallelOn()) {
      parallel(f, args.back());
    }
  }

  void schedule(std::vector<Func> &outputs) {
    Func anchorOut = outputs.front();
    const std::vector<int64_t> &anchorShape =
        spec_.values[spec_.outputs[0]].shape;
    // A linear whose output has the kernel output's index space (possibly
    // through an elementwise epilogue) is computed tile by tile inside it.
    MatmulFuncs *epilogueMatmul = nullptr;
    for (MatmulFuncs &mm : matmuls_) {
      if (!mm.internal && mm.slots == 1 && outputs.size() == 1 &&
          values_shape(mm.out) == anchorShape && anchorShape.size() >= 2 &&
          choice("matmul_at") == "tile") {
        epilogueMatmul = &mm;
      }
    }
    for (size_t o = 0; o < outputs.size(); ++o) {
      if (epilogueMatmul && o == 0) {
        continue;
      }
      scheduleOutput(outputs[o], spec_.values[spec_.outputs[o]].shape);
    }
    for (MatmulFuncs &mm : matmuls_) {
      std::vector<Var> args = mm.mm.args();
      const std::vector<int64_t> &shape =
          mm.shape.empty() ? values_shape(mm.out) : mm.shape;
      int64_t outExtent = shape.back();
      int64_t rowExtent = shape.size() >= 2 ? shape[shape.size() - 2] : 1;
      int width = vectorWidth(outExtent);
      // The register block: row_block rows x col_vectors vectors.
      int outTile = static_cast<int>(
          std::min<int64_t>(field("col_vectors") * width, outExtent));
      int rowTile =
          static_cast<int>(std::min<int64_t>(field("row_block"), rowExtent));
      int unrollK = field("reduction_unroll");
      const std::string &par = choice("parallel");
      // The reduction, unrolled by reduction_unroll inside the block.
      Halide::RVar rxo(absl::StrCat(mm.mm.name(), "_rko")),
          rxi(absl::StrCat(mm.mm.name(), "_rki"));
      std::vector<Halide::VarOrRVar> reduction = {mm.r.x};
      if (unrollK > 1) {
        reduction = {rxi, rxo};
      }
      if (&mm == epilogueMatmul) {
        std::vector<Var> outArgs = anchorOut.args();
        Var oo("oo"), oi("oi"), ro("ro"), ri("ri");
        anchorOut.compute_root()
            .tile(outArgs[0], outArgs[1], oo, ro, oi, ri, outTile, rowTile,
                  Halide::TailStrategy::GuardWithIf)
            .vectorize(oi, width, Halide::TailStrategy::GuardWithIf);
        if (par == "outer") {
          parallel(anchorOut, outArgs.size() > 2 ? outArgs.back() : ro);
        } else if (par == "row_blocks") {
          parallel(anchorOut, ro);
        } else if (par == "col_blocks") {
          parallel(anchorOut, oo);
        }
        mm.mm.compute_at(anchorOut, oo);
        mm.mm.vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
        schedulePrologue(mm.prologue, Halide::LoopLevel(anchorOut, ro));
        Halide::Stage u = mm.mm.update();
        if (unrollK > 1) {
          u.split(mm.r.x, rxo, rxi, unrollK, Halide::TailStrategy::GuardWithIf);
        }
        std::vector<Halide::VarOrRVar> order = {args[0], args[1]};
        order.insert(order.end(), reduction.begin(), reduction.end());
        u.reorder(order)
            .vectorize(args[0], width, Halide::TailStrategy::GuardWithIf)
            .unroll(args[1]);
        if (unrollK > 1) {
          u.unroll(rxi);
        }
        continue;
      }
      // Stored product (e.g. before a head split): tiled update in place.
      mm.mm.compute_root();
      // Stacked linears' products have the weight's slot as their last
      // dimension.
      size_t dims = args.size() - (mm.slots > 1 ? 1 : 0);
      if (dims < 2) {
        // One row: the prologue, if any, once for it.
        schedulePrologue(mm.prologue, Halide::LoopLevel::root());
        mm.mm.update().vectorize(args[0], width,
                                 Halide::TailStrategy::GuardWithIf);
        if (mm.slots > 1) {
          mm.mm.update().unroll(args.back());
        }
        continue;
      }
      Var oo("moo"), oi("moi"), ro("mro"), ri("mri");
      mm.mm.vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
      std::vector<Halide::VarOrRVar> order = {oi, ri};
      order.insert(order.end(), reduction.begin(), reduction.end());
      order.push_back(oo);
      // Stacked linears: every weight per row block of the input
      // (stack_order rows), or each weight's product in turn (weights).
      bool slotsInside = mm.slots > 1 && choice("stack_order") == "rows";
      if (slotsInside) {
        order.push_back(args.back());
      }
      order.push_back(ro);
      for (size_t a = 2; a < dims; ++a) {
        order.push_back(args[a]);
      }
      if (mm.slots > 1 && !slotsInside) {
        order.push_back(args.back());
      }
      Halide::Stage u = mm.mm.update();
      u.split(args[0], oo, oi, outTile, Halide::TailStrategy::GuardWithIf)
          .split(args[1], ro, ri, rowTile, Halide::TailStrategy::GuardWithIf);
      if (unrollK > 1) {
        u.split(mm.r.x, rxo, rxi, unrollK, Halide::TailStrategy::GuardWithIf);
      }
      u.reorder(order)
          .vectorize(oi, width, Halide::TailStrategy::GuardWithIf)
          .unroll(ri);
      if (unrollK > 1) {
        u.unroll(rxi);
      }
      if (mm.slots > 1) {
        u.unroll(args.back());
      }
      schedulePrologue(mm.prologue, Halide::LoopLevel(mm.mm, ro));
      if (par == "outer") {
        parallel(u, dims > 2 ? Halide::VarOrRVar(args[dims - 1])
                             : Halide::VarOrRVar(ro));
      } else if (par == "row_blocks") {
        parallel(u, ro);
      } else if (par == "col_blocks") {
        parallel(u, oo);
      }
    }
    for (auto &[stat, out] : rowStats_) {
      if (out.name() == anchorOut.name() && anchorOut.dimensions() >= 2 &&
          choice("row_stats_at") == "row") {
        stat.compute_at(anchorOut, anchorOut.args()[1]);
      } else {
        stat.compute_root();
      }
    }
    for (Func &f : roots_) {
      f.compute_root();
    }
    for (Func &f : weightCopies_) {
      f.compute_root().vectorize(f.args()[0], vectorWidth(16),
                                 Halide::TailStrategy::GuardWithIf);
    }
    // Weight gradients: blocks of wgrad_col_vectors vectors of output
    // columns x wgrad_row_block rows accumulate in registers while one chunk
    // of the reduction's rows (the innermost leading dimension, e.g. one
    // sequence) streams past; chunks outermost, so both operands' chunk
    // strips stay in cache across blocks.
    for (auto &[f, r] : weightGrads_) {
      std::vector<Var> args = f.args();
      int width = vectorWidth(64);
      Var oo("wgoo"), oi("wgoi"), io("wgio"), ii("wgii");
      Halide::Stage u = f.update();
      u.split(args[0], oo, oi, field("wgrad_col_vectors") * width,
              Halide::TailStrategy::GuardWithIf)
          .split(args[1], io, ii, field("wgrad_row_block"),
                 Halide::TailStrategy::GuardWithIf)
          .reorder(oi, ii, r.x, io, oo, r.y)
          .vectorize(oi, width, Halide::TailStrategy::GuardWithIf)
          .unroll(ii);
      if (parallelOn()) {
        parallel(u, oo);
      }
    }
    // Reductions into an output (scatter-adds, column sums): blocks of
    // columns in parallel, the reduction in order inside each block.
    for (auto &[f, r] : scatters_) {
      Var co("sco"), ci("sci");
      int width = vectorWidth(16);
      Halide::Stage u = f.update();
      u.split(f.args()[0], co, ci, width, Halide::TailStrategy::GuardWithIf)
          .reorder(ci, r.x, co)
          .vectorize(ci);
      if (parallelOn()) {
        parallel(u, co);
      }
    }
    if (hasAttention_) {
      scheduleAttention(anchorOut);
    }
    for (AttendFuncs &a : attends_) {
      scheduleAttend(a);
    }
    if (hasAttentionGrad_) {
      scheduleAttentionGrad();
    }
    if (hasStats_) {
      scheduleStats();
    }
  }

  const std::vector<int64_t> &values_shape(const Func &f) const {
    for (auto &[id, t] : values_) {
      if (t.func.name() == f.name()) {
        return spec_.values[id].shape;
      }
    }
    static const std::vector<int64_t> empty;
    return empty;
  }

  /// Unfused attend: the result in output tiles of row_block queries x
  /// col_vectors vectors of the head dimension; the P V register block per
  /// tile or stored whole first (matmul_at), the keys' reduction outside the
  /// block, unrolled by reduction_unroll; the softmax (row statistics,
  /// exponentials, probabilities) per row of the product's tiles or stored
  /// whole first (row_stats_at); batch and heads on the thread pool.
  void scheduleAttend(AttendFuncs &a) {
    int width = vectorWidth(a.headDim);
    int colTile = static_cast<int>(
        std::min<int64_t>(field("col_vectors") * width, a.headDim));
    int rowTile = std::min(field("row_block"), a.queries);
    int unrollK = field("reduction_unroll");
    const std::string &par = choice("parallel");
    auto parallelize = [&](auto &&stage) {
      if (par == "batch_heads" || par == "heads") {
        parallel(stage, a.h);
      }
      if (par == "batch_heads" || par == "batch") {
        parallel(stage, a.b);
      }
    };
    // The P V update: the block's head-dimension vectors innermost, its
    // queries unrolled, the keys outside them.
    auto blockUpdate = [&](Halide::Stage u, Var c, Var i,
                           std::vector<Halide::VarOrRVar> outer) {
      Halide::RVar rjo(a.pv.name() + "_rjo"), rji(a.pv.name() + "_rji");
      std::vector<Halide::VarOrRVar> order = {c, i};
      if (unrollK > 1) {
        u.split(a.rj.x, rjo, rji, unrollK, Halide::TailStrategy::GuardWithIf);
        order.push_back(rji);
        order.push_back(rjo);
      } else {
        order.push_back(a.rj.x);
      }
      order.insert(order.end(), outer.begin(), outer.end());
      u.reorder(order)
          .vectorize(c, width, Halide::TailStrategy::GuardWithIf)
          .unroll(i);
      if (unrollK > 1) {
        u.unroll(rji);
      }
    };
    Var co(a.result.name() + "_co"), ro(a.result.name() + "_ro"),
        ci(a.result.name() + "_ci"), ri(a.result.name() + "_ri");
    a.result.compute_root()
        .tile(a.c, a.i, co, ro, ci, ri, colTile, rowTile,
              Halide::TailStrategy::GuardWithIf)
        .vectorize(ci, width, Halide::TailStrategy::GuardWithIf);
    parallelize(a.result);
    // The loop over rows of tiles of the product, where a row's softmax is
    // computed when row_stats_at is "row".
    Halide::LoopLevel rows = Halide::LoopLevel(a.result, ro);
    if (choice("matmul_at") == "tile") {
      a.pv.compute_at(a.result, co)
          .vectorize(a.c, width, Halide::TailStrategy::GuardWithIf);
      blockUpdate(a.pv.update(), a.c, a.i, {});
    } else {
      // The whole product first, in the same register blocks.
      Var pco(a.pv.name() + "_co"), pci(a.pv.name() + "_ci"),
          pro(a.pv.name() + "_ro"), pri(a.pv.name() + "_ri");
      a.pv.compute_root().vectorize(a.c, width,
                                    Halide::TailStrategy::GuardWithIf);
      Halide::Stage u = a.pv.update();
      u.split(a.i, pro, pri, rowTile, Halide::TailStrategy::GuardWithIf)
          .split(a.c, pco, pci, colTile, Halide::TailStrategy::GuardWithIf);
      blockUpdate(u, pci, pri, {pco, pro, a.h, a.b});
      parallelize(u);
      rows = Halide::LoopLevel(a.pv, pro);
    }
    // The softmax chain (max, exponentials, sum, probabilities) is read only
    // by the product: a row of tiles' queries with all their keys, reused
    // by every tile of the row, or everything stored first.
    bool perRow = choice("row_stats_at") == "row";
    for (Func f : {a.rowMax, a.exps, a.rowSum, a.prob}) {
      if (perRow) {
        f.compute_at(rows);
        continue;
      }
      f.compute_root();
      parallelize(f);
      if (f.has_update_definition()) {
        parallelize(f.update());
      }
    }
    int keyWidth = vectorWidth(a.keys);
    for (Func f : {a.exps, a.prob}) {
      f.vectorize(f.args()[0], keyWidth, Halide::TailStrategy::GuardWithIf);
    }
  }

  /// Computes `consumer` (already placed) in register blocks of `rows` of
  /// its variable `y` x `vectors` vectors of `width` lanes of its first `x`
  /// (of extent `extent`), and each reduction of `products` (a Func whose
  /// first variable is x and whose variable `productRow` is y, with one
  /// update over its RDom) per block: its pure
  /// variables vectorized and unrolled, the reduction outermost, so that the
  /// block's accumulators are a small constant allocation held in registers.
  void registerBlock(Func consumer,
                     const std::vector<std::pair<Func, RDom>> &products, Var x,
                     Var y, int width, int extent, int vectors, int rows,
                     int productRow = 1) {
    int cols = std::max(1, std::min(vectors * width, extent));
    std::string tag = consumer.name();
    Var xo(tag + "_bxo"), xi(tag + "_bxi"), yo(tag + "_byo"), yi(tag + "_byi"),
        xv(tag + "_bxv"), xl(tag + "_bxl");
    consumer.split(x, xo, xi, cols, Halide::TailStrategy::GuardWithIf)
        .split(y, yo, yi, rows, Halide::TailStrategy::GuardWithIf)
        .reorder(xi, yi, xo, yo)
        .split(xi, xv, xl, width, Halide::TailStrategy::GuardWithIf)
        .vectorize(xl)
        .unroll(xv)
        .unroll(yi);
    // The block's extents are upper bounds (a clamped or partial tile has
    // fewer queries or keys), so each stage splits by them and unrolls the
    // inner loops, whose outer loops then run once.
    int colVectors = (cols + width - 1) / width;
    for (auto [f, r] : products) {
      std::vector<Var> args = f.args();
      Var row = args[productRow];
      auto block = [&](Halide::Stage stage, const std::string &s,
                       bool reduction) {
        Var pv(f.name() + s + "_bv"), pl(f.name() + s + "_bl"),
            pvo(f.name() + s + "_bvo"), pvi(f.name() + s + "_bvi"),
            yo(f.name() + s + "_byo"), yi(f.name() + s + "_byi");
        std::vector<Halide::VarOrRVar> order = {pl, pvi, yi};
        if (reduction) {
          for (int d = 0; d < r.dimensions(); ++d) {
            order.push_back(r[d]);
          }
        }
        order.push_back(pvo);
        order.push_back(yo);
        stage.split(args[0], pv, pl, width, Halide::TailStrategy::GuardWithIf)
            .split(pv, pvo, pvi, colVectors, Halide::TailStrategy::GuardWithIf)
            .split(row, yo, yi, rows, Halide::TailStrategy::GuardWithIf)
            .reorder(order)
            .vectorize(pl)
            .unroll(pvi)
            .unroll(yi);
      };
      f.compute_at(consumer, xo);
      block(f, "_s0", false);
      block(f.update(), "_s1", true);
    }
  }

  void scheduleAttention(Func anchorOut) {
    AttentionFuncs &a = attention_;
    // The attention result is computed per (batch, head, query tile) inside
    // the output (which may re-lay it out, e.g. merge heads).
    Var io("io"), ii("ii");
    a.result.compute_root()
        .split(a.i, io, ii,
               attentionQueryTile_ ? attentionQueryTile_ : field("query_tile"),
               Halide::TailStrategy::GuardWithIf)
        .reorder(a.e, ii, io, a.h, a.b);
    const std::string &par = choice("parallel");
    if (par == "batch_heads" || par == "heads") {
      parallel(a.result, a.h);
    }
    if (par == "batch_heads" || par == "batch") {
      parallel(a.result, a.b);
    }
    if (par == "query_tiles") {
      parallel(a.result, io);
    }
    a.state.compute_at(a.result, io);
    // Key tiles outside the queries of the tile: every tile Func is computed
    // once per key tile for the whole query tile.
    a.state.update().reorder(a.e, a.stateQuery, a.kt);
    int width = vectorWidth(spec_.values[values_id()].shape[3]);
    a.state.update().vectorize(a.e, width, Halide::TailStrategy::GuardWithIf);
    for (Func f : {a.tileScores, a.tileMax, a.prob, a.tileSum}) {
      f.compute_at(a.state, a.kt);
    }
    // Row reductions over the key tile: partial results per vector lane, then
    // one horizontal step (instead of a scalar loop over every key).
    // (The schedule's check makes reduce_lanes divide the key tile.)
    int lanes = field("reduce_lanes");
    if (lanes > 1 && attentionKeyTile_ % lanes == 0 &&
        attentionKeyTile_ > lanes) {
      int index = 0;
      for (Func f : {a.tileMax, a.tileSum}) {
        Halide::RVar outer(absl::StrCat("rko", index)),
            inner(absl::StrCat("rki", index));
        Var lane(absl::StrCat("lane", index++));
        Func partial =
            f.update().split(a.rk.x, outer, inner, lanes).rfactor(inner, lane);
        partial.compute_at(a.state, a.kt).vectorize(lane);
        partial.update().vectorize(lane);
      }
    }
    // P V for the tile: blocks of pv_query_block queries x pv_value_vectors
    // vectors of the head dimension accumulate in registers while the keys
    // stream past.
    a.tileValues.compute_at(a.state, a.kt);
    int headDim = static_cast<int>(spec_.values[values_id()].shape[3]);
    registerBlock(a.tileValues, {{a.tileProduct, a.rk}}, a.e, a.i, width,
                  headDim, field("pv_value_vectors"), field("pv_query_block"),
                  /*productRow=*/2);
    int keyWidth = vectorWidth(attentionKeyTile_);
    a.prob.vectorize(a.jj, keyWidth, Halide::TailStrategy::GuardWithIf);
    if (choice("score_layout") == "queries_inner") {
      // Stored query-major: the P V product reads the tile along queries.
      // (The schedule's check makes the key tile divide the keys: Halide 14
      // computes wrong tiles in this layout when the last one is partial.)
      for (Func f : {a.tileScores, a.prob}) {
        f.reorder_storage(a.i, a.jj, a.t, a.h, a.b);
      }
    }
    // The score tile in blocks of score_query_block queries x
    // score_key_vectors vectors of keys: each part's product (Q K^T, a
    // dense score's second layer, R1 R2^T) accumulates there in registers
    // over its reduction, reading one row of the key-side operand (stored
    // key-major per tile) and broadcasting one value per query. The per-query
    // MLPs (dense, factorized dense) run once per query tile.
    registerBlock(a.tileScores, tileFuncs_, a.jj, a.i, keyWidth,
                  attentionKeyTile_, field("score_key_vectors"),
                  field("score_query_block"));
    for (Func f : transposed_) {
      f.compute_at(a.state, a.kt)
          .vectorize(f.args()[0], keyWidth, Halide::TailStrategy::GuardWithIf);
    }
    for (auto &[f, r] : queryFuncs_) {
      int qWidth = vectorWidth(64); // per-query MLP: along its hidden units
      f.compute_at(a.result, io)
          .vectorize(f.args()[0], qWidth, Halide::TailStrategy::GuardWithIf);
      f.update().reorder(f.args()[0], f.args()[1], r.x);
      f.update().vectorize(f.args()[0], qWidth,
                           Halide::TailStrategy::GuardWithIf);
    }
    (void)anchorOut;
  }

  int values_id() const {
    for (const OpSpec &op : spec_.ops) {
      if (op.kind == OpKind::FusedAttention) {
        return op.values;
      }
    }
    return 0;
  }

  struct MatmulFuncs {
    Func mm;
    Func out;
    RDom r;
    /// The product's row-major shape when `out` is not a value of the
    /// kernel (a score op's hidden layer); empty: the shape of `out`.
    std::vector<int64_t> shape = {};
    /// Always stored whole (an operand of another product), never computed
    /// per tile of the kernel's output.
    bool internal = false;
    /// Linears of one input with stacked weights (synth-fuse-projections):
    /// the product's outermost dimension picks the weight, 1 otherwise.
    int slots = 1;
    /// The input it reads when that is a layer norm prologue of the kernel.
    Func prologue = {};
  };
  struct AttentionFuncs {
    Func result, state, tileScores, tileMax, prob, tileSum, tileValues,
        tileProduct;
    RDom kt, rk;
    Var e, i, h, b, t, jj;
    /// The state's query variable: i, or the query within its tile when the
    /// state is indexed by query tile (causal).
    Var stateQuery;
  };

  const KernelSpec &spec_;
  const sched::Schedule &sched_;
  std::vector<Halide::ImageParam> params_;
  std::map<int, TensorFunc> values_;
  std::vector<MatmulFuncs> matmuls_;
  std::vector<std::pair<Func, Func>> rowStats_;
  /// Linears that share one product (same input, weights of one shape and
  /// layout): op index -> (index of the group's first op, slot).
  std::map<size_t, std::pair<size_t, int>> stacked_;
  /// The group's product, by the index of its first op.
  std::map<size_t, size_t> stackedMatmul_;
  size_t opIndex_ = 0;
  /// Layer norms of the kernel whose result a linear reads (prologues):
  /// value id -> the normalized Func, with their row statistics.
  std::map<int, Func> prologues_;
  std::vector<std::pair<Func, Func>> prologueStats_;
  std::set<std::string> scheduledPrologues_;
  /// A prologue's row sums: the sum, the normalized Func, the reduction.
  struct PrologueSum {
    Func sum, out;
    RDom r;
  };
  std::vector<PrologueSum> prologueSums_;
  std::vector<Func> roots_;
  std::map<std::string, Func> partFuncs_;
  /// Score and per-query Funcs with the reduction domain of their update.
  std::vector<std::pair<Func, RDom>> tileFuncs_;
  std::vector<std::pair<Func, RDom>> queryFuncs_;
  std::vector<Func> transposed_;
  /// Transposed weights of linear {transpose_weight}, computed once.
  std::vector<Func> weightCopies_;
  /// Outputs defined by a reduction update over `RDom` (scatter-adds).
  std::vector<std::pair<Func, RDom>> scatters_;
  /// Linear weight gradients (reduction over rows: x = inner, y = outer).
  std::vector<std::pair<Func, RDom>> weightGrads_;
  Func mixWeights_;
  AttentionFuncs attention_;
  std::vector<AttendFuncs> attends_;
  struct AttentionGradFuncs {
    Func f, result;
    GradLayout layout = GradLayout::Materialized;
    Var tileVar;
    RDom red;
    Func dS, dP, vT;
    ScoreFuncs scores;
    Func prob;
  };
  struct StatsFuncs {
    Func out, masked, mx, sum;
    ScoreFuncs scores;
    RDom rj;
  };
  AttentionGradFuncs attentionGrad_;
  StatsFuncs statsFuncs_;
  bool hasAttentionGrad_ = false;
  bool hasStats_ = false;
  /// Mixture weights alpha(m, h) of the op being emitted.
  Func mixAlpha_;
  bool hasAttention_ = false;
  int attentionKeyTile_ = 64;
  /// The query tile the causal state is indexed by (0: not causal).
  int attentionQueryTile_ = 0;
};

/// Runs `body`, turning Halide's exceptions into a status naming the kernel.
/// A Halide autoscheduler that could not be loaded (a missing plugin).
struct SchedulerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// An autoscheduler that gave up on a kernel (Adams2019 needs constant
/// bounds, so data-dependent gathers defeat it, for example).
struct AutoscheduleFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename Fn> absl::Status guarded(const KernelSpec &kernel, Fn body) {
  try {
    body();
  } catch (const Halide::Error &error) {
    return absl::InternalError(absl::StrCat("Halide failed on kernel ",
                                            kernel.name, ": ", error.what()));
  } catch (const std::out_of_range &error) {
    return absl::InvalidArgumentError(
        absl::StrCat("kernel ", kernel.name, ": ", error.what()));
  } catch (const SchedulerError &error) {
    return absl::FailedPreconditionError(
        absl::StrCat("kernel ", kernel.name, ": ", error.what()));
  }
  return absl::OkStatus();
}

/// The kernel's schedule for a Halide target string (by its class).
const sched::Schedule &scheduleFor(const KernelSpec &kernel,
                                   const std::string &target) {
  const sched::Isa &isa = sched::isaOfHalideTarget(target);
  auto it = kernel.schedules.find(isa.name);
  if (it == kernel.schedules.end()) {
    throw std::out_of_range(
        absl::StrCat("no schedule for target class ", isa.name, " (target ",
                     target, "); run synth-assign-schedules with it"));
  }
  return it->second;
}

Halide::Target parseTarget(const std::string &text) {
  return Halide::Target(text);
}

/// The name an autoscheduler plugin registers itself under.
std::string registeredName(const std::string &scheduler) {
  if (scheduler == "adams2019") {
    return "Adams2019";
  }
  if (scheduler == "li2018") {
    return "Li2018";
  }
  return "Mullapudi2016";
}

/// Loads the plugin of `scheduler` once per process.
void loadAutoscheduler(const std::string &scheduler) {
  static std::mutex mutex;
  static std::set<std::string> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  if (loaded.count(scheduler)) {
    return;
  }
  std::string path = autoschedulerPlugin(scheduler);
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw SchedulerError(absl::StrCat(
        "the Halide autoscheduler '", scheduler, "' needs its plugin ", path,
        ", which does not exist (Debian's libhalide14-1 ships it; "
        "SYNTH_HALIDE_AUTOSCHEDULER_DIR names another folder)"));
  }
  Halide::load_plugin(path);
  loaded.insert(scheduler);
}

/// What the autoschedulers are told about the machine: the threads and the
/// last-level cache of the compiling machine (Halide's generic balance).
Halide::MachineParams machineParams() {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  uint64_t cache = 16ull << 20;
  std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index3/size");
  std::string size;
  if (in >> size && !size.empty()) {
    char unit = size.back();
    uint64_t value = std::strtoull(size.c_str(), nullptr, 10);
    uint64_t scale = unit == 'K' ? 1024 : unit == 'M' ? (1u << 20) : 1;
    if (value > 0) {
      cache = value * scale;
    }
  }
  return Halide::MachineParams(threads > 0 ? threads : 1, cache, 40);
}

/// Sends stderr (file descriptor 2) to /dev/null while alive.
class QuietStderr {
public:
  explicit QuietStderr(bool quiet) {
    if (!quiet) {
      return;
    }
    std::fflush(stderr);
    saved_ = dup(2);
    int null = open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null >= 0) {
      dup2(null, 2);
    }
    if (null >= 0) {
      close(null);
    }
  }
  ~QuietStderr() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      dup2(saved_, 2);
      close(saved_);
    }
  }
  QuietStderr(const QuietStderr &) = delete;
  QuietStderr &operator=(const QuietStderr &) = delete;

private:
  int saved_ = -1;
};

/// The kernel's pipeline for `target`: the algorithm, then the explicit
/// schedule or the kernel's autoscheduler.
struct BuiltPipeline {
  Halide::Pipeline pipeline;
  std::vector<Halide::Argument> arguments;
};
BuiltPipeline buildPipeline(const KernelSpec &kernel,
                            const Halide::Target &target) {
  std::string text =
      target.without_feature(Halide::Target::NoRuntime).to_string();
  KernelBuilder builder(kernel, scheduleFor(kernel, text));
  std::vector<Func> outputs = builder.build();
  Halide::Pipeline pipeline(outputs);
  builder.constrainOutputs(pipeline);
  if (!kernel.scheduler.empty()) {
    loadAutoscheduler(kernel.scheduler);
    // The autoschedulers narrate their search on stderr: kept out of the
    // compiler's output unless SYNTH_AUTOSCHEDULE_LOG is set.
    QuietStderr quiet(std::getenv("SYNTH_AUTOSCHEDULE_LOG") == nullptr);
    try {
      pipeline.auto_schedule(registeredName(kernel.scheduler), target,
                             machineParams());
    } catch (const Halide::Error &error) {
      throw AutoscheduleFailed(error.what());
    }
  }
  return {pipeline, builder.arguments()};
}

} // namespace

std::string autoschedulerPlugin(const std::string &scheduler) {
  const char *dir = std::getenv("SYNTH_HALIDE_AUTOSCHEDULER_DIR");
  std::filesystem::path folder =
      dir && *dir ? dir : "/usr/lib/x86_64-linux-gnu/halide14";
  return (folder / absl::StrCat("libautoschedule_", scheduler, ".so")).string();
}

std::vector<std::string> portableTargets() {
  return {"x86-64-linux-avx-avx2-avx512-avx512_skylake-f16c-fma-sse41",
          "x86-64-linux-avx-avx2-f16c-fma-sse41", "x86-64-linux-sse41"};
}

std::string hostTarget() {
  // Halide 14's get_host_target() asks for less than its features' code needs
  // (avx512_sapphirerapids on AMD Zen 4, which lacks AVX-VNNI and
  // AVX512-FP16): keep only the features the runtime's check, from the same
  // table, finds on this CPU, so the artifact loads where it was built.
  Halide::Target target = Halide::get_host_target();
  const rt::CpuFeatures &cpu = rt::hostCpuFeatures();
  for (const rt::HalideX86Feature &feature : rt::halideX86Features()) {
    Halide::Target::Feature f = Halide::Target::feature_from_name(feature.name);
    if (target.has_feature(f) && !cpu.has(feature.name)) {
      target = target.without_feature(f);
    }
  }
  return target.to_string();
}

namespace {

void compileTo(const KernelSpec &kernel,
               const std::vector<std::string> &targets,
               const std::string &prefix, std::vector<std::string> &objects) {
  {
    std::vector<Halide::Target> halideTargets;
    for (const std::string &t : targets) {
      scheduleFor(kernel, t); // every target's schedule exists, before Halide
      halideTargets.push_back(
          parseTarget(t).with_feature(Halide::Target::NoRuntime));
    }
    if (halideTargets.size() == 1) {
      BuiltPipeline built = buildPipeline(kernel, halideTargets[0]);
      std::string object = prefix + ".o";
      built.pipeline.compile_to_object(object, built.arguments, kernel.name,
                                       halideTargets[0]);
      objects.push_back(object);
      return;
    }
    std::vector<std::string> suffixes;
    for (size_t i = 0; i < halideTargets.size(); ++i) {
      suffixes.push_back(absl::StrCat("v", i));
    }
    // The free function (rather than Pipeline::compile_to_multitarget_*) lets
    // the dispatcher carry the kernel's name instead of its output Func's,
    // and each target build its own pipeline from its own schedule.
    Halide::compile_multitarget(
        kernel.name, {{Halide::OutputFileType::object, prefix + ".o"}},
        halideTargets, suffixes,
        [&](const std::string &name, const Halide::Target &target) {
          BuiltPipeline built = buildPipeline(kernel, target);
          return built.pipeline.compile_to_module(built.arguments, name,
                                                  target);
        });
    for (const std::string &suffix : suffixes) {
      // Halide names each variant "<prefix>-<suffix>.o".
      objects.push_back(prefix + "-" + suffix + ".o");
    }
    objects.push_back(prefix + "_wrapper.o");
  }
}

} // namespace

absl::StatusOr<std::vector<std::string>>
compileKernel(const KernelSpec &requested,
              const std::vector<std::string> &targets,
              const std::string &prefix, std::string *fallback) {
  std::vector<std::string> objects;
  KernelSpec kernel = requested;
  absl::Status status = guarded(kernel, [&] {
    objects.clear();
    try {
      compileTo(kernel, targets, prefix, objects);
    } catch (const AutoscheduleFailed &error) {
      // The kernel keeps its explicit schedule; the caller says so.
      if (fallback) {
        *fallback = error.what();
      }
      kernel.scheduler.clear();
      objects.clear();
      compileTo(kernel, targets, prefix, objects);
    }
  });
  if (!status.ok()) {
    return status;
  }
  return objects;
}

absl::Status compileRuntime(const std::vector<std::string> &targets,
                            const std::string &objectPath) {
  try {
    Halide::compile_standalone_runtime(objectPath, parseTarget(targets.back()));
  } catch (const Halide::Error &error) {
    return absl::InternalError(
        absl::StrCat("Halide failed to compile its runtime: ", error.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> loweredStatement(const KernelSpec &kernel,
                                             const std::string &target) {
  std::string text;
  absl::Status status = guarded(kernel, [&] {
    BuiltPipeline built = buildPipeline(kernel, parseTarget(target));
    // Halide writes the statement to a file: a private one in $TMPDIR.
    std::string pattern =
        (std::filesystem::temp_directory_path() / "synthc-stmt-XXXXXX")
            .string();
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    char *path = buffer.data();
    int fd = mkstemp(path);
    if (fd >= 0) {
      close(fd);
    }
    built.pipeline.compile_to_lowered_stmt(path, built.arguments,
                                           Halide::StmtOutputFormat::Text,
                                           parseTarget(target));
    std::ifstream in(path);
    std::stringstream contents;
    contents << in.rdbuf();
    text = contents.str();
    std::remove(path);
  });
  if (!status.ok()) {
    return status;
  }
  return text;
}

} // namespace synth::cpu
