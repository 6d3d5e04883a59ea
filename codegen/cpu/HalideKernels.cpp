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

#include "Halide.h"
#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace synth::cpu {

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

/// The Funcs of one kernel and what the schedule needs to know about them.
class KernelBuilder {
public:
  explicit KernelBuilder(const KernelSpec &spec) : spec_(spec) {}

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
    for (const OpSpec &op : spec_.ops) {
      emit(op);
    }
    std::vector<Func> outputs;
    for (int id : spec_.outputs) {
      outputs.push_back(values_.at(id).func);
    }
    schedule(outputs);
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
      for (int d = 0; d < static_cast<int>(t.shape.size()); ++d) {
        int64_t extent = t.shape[t.shape.size() - 1 - d];
        buffer.dim(d).set_bounds(0, static_cast<int>(extent));
        buffer.dim(d).set_stride(static_cast<int>(stride));
        stride *= extent;
      }
    }
  }

private:
  const TensorFunc &value(int id) const { return values_.at(id); }

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
      Func mean(absl::StrCat("ln_mean_", op.result));
      define(mean, rows, Halide::sum(at(x, xr)) / static_cast<float>(d));
      Func var(absl::StrCat("ln_var_", op.result));
      Expr centered = at(x, xr) - at(TensorFunc{mean, {}}, rowIdx);
      define(var, rows,
             Halide::sum(centered * centered) / static_cast<float>(d));
      Expr inv =
          1.0f / Halide::sqrt(at(TensorFunc{var, {}}, rowIdx) + op.epsilon);
      define(f, v,
             (at(x, e) - at(TensorFunc{mean, {}}, rowIdx)) * inv *
                     at(value(op.operands[1]), {e.back()}) +
                 at(value(op.operands[2]), {e.back()}));
      rowStats_.push_back({mean, f});
      rowStats_.push_back({var, f});
      break;
    }
    case OpKind::Linear: {
      const TensorFunc &x = value(op.operands[0]);
      const TensorFunc &w = value(op.operands[1]);
      int64_t in = x.shape.back();
      RDom r(0, static_cast<int>(in), absl::StrCat("k", op.result));
      std::vector<Expr> xi(e.begin(), e.end() - 1);
      xi.push_back(r);
      Expr weight =
          op.transposeWeight ? at(w, {e.back(), r}) : at(w, {r, e.back()});
      Func mm(absl::StrCat("matmul_", op.result));
      define(mm, v, 0.0f);
      std::vector<Var> reversed(v.rbegin(), v.rend());
      mm(reversed) += at(x, xi) * weight;
      Expr out = at(TensorFunc{mm, shape}, e);
      if (op.hasBias) {
        out = out + at(value(op.operands[2]), {e.back()});
      }
      define(f, v, out);
      matmuls_.push_back({mm, f, r});
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
      mm(reversed) +=
          at(probs, {e[1], e[2], j}) * at(values, {e[0], e[1], j, e[3]});
      define(f, v, at(TensorFunc{mm, shape}, e));
      matmuls_.push_back({mm, f, j});
      break;
    }
    case OpKind::FusedAttention:
      emitAttention(op, f, v);
      break;
    }
    setResult(op, f);
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

  void emitAttention(const OpSpec &op, Func &out, const std::vector<Var> &v) {
    const TensorFunc &values = value(op.values);
    int keys = static_cast<int>(values.shape[2]);
    int tile = static_cast<int>(
        std::min<int64_t>(keys, spec_.schedule.tileSizes.size() > 3 &&
                                        spec_.schedule.tileSizes[3] > 0
                                    ? spec_.schedule.tileSizes[3]
                                    : 64));
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
    Func tileValues("tile_values");
    tileValues(e, t, i, h, b) = 0.0f;
    tileValues(e, t, i, h, b) +=
        prob(rk, t, i, h, b) *
        at(values, {b, h, Halide::min(t * tile + rk, keys - 1), e});

    // Online softmax state over key tiles: running max, sum, and sum of
    // probability-weighted values, merged tile by tile.
    Func state("attention_state");
    state(e, i, h, b) = Halide::Tuple(kMaskedScore, 0.0f, 0.0f);
    RDom kt(0, numTiles, "kt");
    Expr mOld = state(e, i, h, b)[0];
    Expr tm = tileMax(kt, i, h, b);
    Expr mNew = Halide::max(mOld, tm);
    Expr aOld = Halide::exp(mOld - mNew);
    Expr aTile = Halide::exp(tm - mNew);
    state(e, i, h, b) = Halide::Tuple(
        mNew, state(e, i, h, b)[1] * aOld + tileSum(kt, i, h, b) * aTile,
        state(e, i, h, b)[2] * aOld + tileValues(e, kt, i, h, b) * aTile);
    Expr l = state(e, i, h, b)[1];
    Func result("attention_out");
    result(e, i, h, b) =
        Halide::select(l > 0.0f, state(e, i, h, b)[2] / l, 0.0f);
    define(out, v, result(v[3], v[2], v[1], v[0]));

    attention_ = AttentionFuncs{result,  state,      tileScores, tileMax, prob,
                                tileSum, tileValues, kt,         rk,      e,
                                i,       h,          b,          t,       jj};
    hasAttention_ = true;
  }

  //===--------------------------------------------------------------------===//
  // Schedule
  //===--------------------------------------------------------------------===//

  int vectorWidth(int64_t extent) const {
    int width =
        static_cast<int>(std::max<int64_t>(1, spec_.schedule.vectorWidth));
    while (width > 1 && width > extent) {
      width /= 2;
    }
    return width;
  }

  /// Parallel over the outermost dimension, vectorized along the innermost.
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
    if (shape.size() > 1) {
      f.parallel(args.back());
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
      if (outputs.size() == 1 && values_shape(mm.out) == anchorShape &&
          anchorShape.size() >= 2) {
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
      const std::vector<int64_t> &shape = values_shape(mm.out);
      int64_t outExtent = shape.back();
      int64_t rowExtent = shape.size() >= 2 ? shape[shape.size() - 2] : 1;
      int width = vectorWidth(outExtent);
      int outTile = static_cast<int>(std::min<int64_t>(4 * width, outExtent));
      int rowTile = static_cast<int>(std::min<int64_t>(4, rowExtent));
      if (&mm == epilogueMatmul) {
        std::vector<Var> outArgs = anchorOut.args();
        Var oo("oo"), oi("oi"), ro("ro"), ri("ri");
        anchorOut.compute_root()
            .tile(outArgs[0], outArgs[1], oo, ro, oi, ri, outTile, rowTile,
                  Halide::TailStrategy::GuardWithIf)
            .vectorize(oi, width, Halide::TailStrategy::GuardWithIf);
        if (outArgs.size() > 2) {
          anchorOut.parallel(outArgs.back());
        } else {
          anchorOut.parallel(ro);
        }
        mm.mm.compute_at(anchorOut, oo);
        mm.mm.vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
        mm.mm.update()
            .reorder(args[0], args[1], mm.r.x)
            .vectorize(args[0], width, Halide::TailStrategy::GuardWithIf)
            .unroll(args[1]);
        continue;
      }
      // Stored product (e.g. before a head split): tiled update in place.
      mm.mm.compute_root();
      if (args.size() < 2) {
        mm.mm.update().vectorize(args[0], width,
                                 Halide::TailStrategy::GuardWithIf);
        continue;
      }
      Var oo("moo"), oi("moi"), ro("mro"), ri("mri");
      mm.mm.vectorize(args[0], width, Halide::TailStrategy::GuardWithIf);
      std::vector<Halide::VarOrRVar> order = {oi, ri, mm.r.x, oo, ro};
      for (size_t a = 2; a < args.size(); ++a) {
        order.push_back(args[a]);
      }
      mm.mm.update()
          .split(args[0], oo, oi, outTile, Halide::TailStrategy::GuardWithIf)
          .split(args[1], ro, ri, rowTile, Halide::TailStrategy::GuardWithIf)
          .reorder(order)
          .vectorize(oi, width, Halide::TailStrategy::GuardWithIf)
          .unroll(ri)
          .parallel(args.size() > 2 ? Halide::VarOrRVar(args.back())
                                    : Halide::VarOrRVar(ro));
    }
    for (auto &[stat, out] : rowStats_) {
      if (out.name() == anchorOut.name() && anchorOut.dimensions() >= 2) {
        stat.compute_at(anchorOut, anchorOut.args()[1]);
      } else {
        stat.compute_root();
      }
    }
    for (Func &f : roots_) {
      f.compute_root();
    }
    if (hasAttention_) {
      scheduleAttention(anchorOut);
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

  void scheduleAttention(Func anchorOut) {
    AttentionFuncs &a = attention_;
    int64_t queryTile =
        spec_.schedule.tileSizes.size() > 2 && spec_.schedule.tileSizes[2] > 0
            ? spec_.schedule.tileSizes[2]
            : 32;
    // The attention result is computed per (batch, head, query tile) inside
    // the output (which may re-lay it out, e.g. merge heads).
    Var io("io"), ii("ii");
    a.result.compute_root()
        .split(a.i, io, ii, static_cast<int>(queryTile),
               Halide::TailStrategy::GuardWithIf)
        .reorder(a.e, ii, io, a.h, a.b)
        .parallel(a.h)
        .parallel(a.b);
    a.state.compute_at(a.result, io);
    // Key tiles outside the queries of the tile: every tile Func is computed
    // once per key tile for the whole query tile.
    a.state.update().reorder(a.e, a.i, a.kt);
    int width = vectorWidth(spec_.values[values_id()].shape[3]);
    a.state.update().vectorize(a.e, width, Halide::TailStrategy::GuardWithIf);
    for (Func f : {a.tileScores, a.tileMax, a.prob, a.tileSum}) {
      f.compute_at(a.state, a.kt);
    }
    // Row reductions over the key tile: partial results per vector lane, then
    // one horizontal step (instead of a scalar loop over every key).
    int lanes = vectorWidth(attentionKeyTile_);
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
    a.tileValues.compute_at(a.state, a.kt);
    a.tileValues.vectorize(a.e, width, Halide::TailStrategy::GuardWithIf);
    // P V for the tile: blocks of 4 queries x the head dimension stay in
    // registers while the keys stream past (the key loop outside them).
    Var qo("qo"), qi("qi");
    a.tileValues.update()
        .split(a.i, qo, qi, 4, Halide::TailStrategy::GuardWithIf)
        .reorder(a.e, qi, a.rk.x, qo)
        .vectorize(a.e, width, Halide::TailStrategy::GuardWithIf)
        .unroll(qi);
    int keyWidth = vectorWidth(attentionKeyTile_);
    a.tileScores.vectorize(a.jj, keyWidth, Halide::TailStrategy::GuardWithIf);
    a.prob.vectorize(a.jj, keyWidth, Halide::TailStrategy::GuardWithIf);
    // Per-part score Funcs are evaluated for one key tile at a time; the
    // per-query MLPs (dense, factorized dense) once per query tile.
    for (auto &[f, r] : tileFuncs_) {
      f.compute_at(a.state, a.kt);
      f.vectorize(f.args()[0], keyWidth, Halide::TailStrategy::GuardWithIf);
      // Reduction outside the queries: each row of the key-side operand is
      // loaded once per tile and reused by every query of the tile.
      f.update().reorder(f.args()[0], f.args()[1], r.x);
      f.update().vectorize(f.args()[0], keyWidth,
                           Halide::TailStrategy::GuardWithIf);
    }
    for (Func f : transposed_) {
      f.compute_at(a.state, a.kt)
          .vectorize(f.args()[0], keyWidth, Halide::TailStrategy::GuardWithIf);
    }
    for (auto &[f, r] : queryFuncs_) {
      int qWidth = vectorWidth(64);
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
  };
  struct AttentionFuncs {
    Func result, state, tileScores, tileMax, prob, tileSum, tileValues;
    RDom kt, rk;
    Var e, i, h, b, t, jj;
  };

  const KernelSpec &spec_;
  std::vector<Halide::ImageParam> params_;
  std::map<int, TensorFunc> values_;
  std::vector<MatmulFuncs> matmuls_;
  std::vector<std::pair<Func, Func>> rowStats_;
  std::vector<Func> roots_;
  std::map<std::string, Func> partFuncs_;
  /// Score and per-query Funcs with the reduction domain of their update.
  std::vector<std::pair<Func, RDom>> tileFuncs_;
  std::vector<std::pair<Func, RDom>> queryFuncs_;
  std::vector<Func> transposed_;
  Func mixWeights_;
  AttentionFuncs attention_;
  bool hasAttention_ = false;
  int attentionKeyTile_ = 64;
};

/// Runs `body`, turning Halide's exceptions into a status naming the kernel.
template <typename Fn> absl::Status guarded(const KernelSpec &kernel, Fn body) {
  try {
    body();
  } catch (const Halide::Error &error) {
    return absl::InternalError(absl::StrCat("Halide failed on kernel ",
                                            kernel.name, ": ", error.what()));
  }
  return absl::OkStatus();
}

Halide::Target parseTarget(const std::string &text) {
  return Halide::Target(text);
}

} // namespace

std::vector<std::string> portableTargets() {
  return {"x86-64-linux-avx-avx2-avx512-avx512_skylake-f16c-fma-sse41",
          "x86-64-linux-avx-avx2-f16c-fma-sse41", "x86-64-linux-sse41"};
}

std::string hostTarget() { return Halide::get_host_target().to_string(); }

absl::StatusOr<std::vector<std::string>>
compileKernel(const KernelSpec &kernel, const std::vector<std::string> &targets,
              const std::string &prefix) {
  std::vector<std::string> objects;
  absl::Status status = guarded(kernel, [&] {
    KernelBuilder builder(kernel);
    std::vector<Func> outputs = builder.build();
    Halide::Pipeline pipeline(outputs);
    builder.constrainOutputs(pipeline);
    std::vector<Halide::Target> halideTargets;
    for (const std::string &t : targets) {
      halideTargets.push_back(
          parseTarget(t).with_feature(Halide::Target::NoRuntime));
    }
    if (halideTargets.size() == 1) {
      std::string object = prefix + ".o";
      pipeline.compile_to_object(object, builder.arguments(), kernel.name,
                                 halideTargets[0]);
      objects.push_back(object);
      return;
    }
    std::vector<std::string> suffixes;
    for (size_t i = 0; i < halideTargets.size(); ++i) {
      suffixes.push_back(absl::StrCat("v", i));
    }
    // The free function (rather than Pipeline::compile_to_multitarget_*) lets
    // the dispatcher carry the kernel's name instead of its output Func's.
    std::vector<Halide::Argument> args = builder.arguments();
    Halide::compile_multitarget(
        kernel.name, {{Halide::OutputFileType::object, prefix + ".o"}},
        halideTargets, suffixes,
        [&](const std::string &name, const Halide::Target &target) {
          return pipeline.compile_to_module(args, name, target);
        });
    for (const std::string &suffix : suffixes) {
      // Halide names each variant "<prefix>-<suffix>.o".
      objects.push_back(prefix + "-" + suffix + ".o");
    }
    objects.push_back(prefix + "_wrapper.o");
  });
  if (!status.ok()) {
    return status;
  }
  (void)kernel;
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
    KernelBuilder builder(kernel);
    std::vector<Func> outputs = builder.build();
    Halide::Pipeline pipeline(outputs);
    builder.constrainOutputs(pipeline);
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
    pipeline.compile_to_lowered_stmt(path, builder.arguments(),
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
