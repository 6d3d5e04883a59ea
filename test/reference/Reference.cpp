//===- Reference.cpp - forward, loss and backward as plain loops ----------===//
//
// Reads top to bottom: containers and parameter access; one forward and one
// backward function per op; the blocks built from them (attention,
// feed-forward, residual sublayers, stacks); whole models; validation and
// random inputs. Every backward function is the derivative of the forward
// function above it, written out by hand, so a mistake in either shows up
// against finite differences (ReferenceGradientTest) and against PyTorch's
// autograd (torch_crosscheck.py).
//
// Activations are matrices with one row per (batch, position) and one column
// per feature; attention scores are [B, H, queries, keys]. Everything is
// double, so the reference is exact to ~1e-15 and finite differences work.
//
//===----------------------------------------------------------------------===//

#include "test/reference/Reference.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace synth::reference {

Array Array::zeros(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    n *= d;
  }
  Array array;
  array.shape = std::move(shape);
  array.data.assign(static_cast<size_t>(n), 0.0);
  return array;
}

absl::StatusOr<ArrayMap> loadParameters(const safetensors::File &weights,
                                        const std::vector<ParamInfo> &table) {
  if (absl::Status status = checkParameters(weights, table, "weights");
      !status.ok()) {
    return status;
  }
  ArrayMap params;
  for (const ParamInfo &info : table) {
    const float *values = weights.find(info.name)->data<float>();
    Array array = Array::zeros(info.shape);
    for (int64_t i = 0; i < array.numel(); ++i) {
      array.data[i] = values[i];
    }
    params.emplace(info.name, std::move(array));
  }
  return params;
}

namespace {

//===----------------------------------------------------------------------===//
// Containers and parameter access
//===----------------------------------------------------------------------===//

/// Activations: one row per (batch, position), one column per feature.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> v;

  Matrix() = default;
  Matrix(int64_t rows, int64_t cols)
      : rows(rows), cols(cols), v(static_cast<size_t>(rows * cols), 0.0) {}
  double &at(int64_t r, int64_t c) { return v[r * cols + c]; }
  double at(int64_t r, int64_t c) const { return v[r * cols + c]; }
};

void addInto(Matrix &acc, const Matrix &x) {
  for (size_t i = 0; i < acc.v.size(); ++i) {
    acc.v[i] += x.v[i];
  }
}

/// Attention scores or probabilities, [B, H, queries, keys].
struct Scores {
  int64_t batch = 0, heads = 0, queries = 0, keys = 0;
  std::vector<double> v;

  Scores() = default;
  Scores(int64_t batch, int64_t heads, int64_t queries, int64_t keys)
      : batch(batch), heads(heads), queries(queries), keys(keys),
        v(static_cast<size_t>(batch * heads * queries * keys), 0.0) {}
  /// Same dimensions, all zeros.
  static Scores like(const Scores &s) {
    return Scores(s.batch, s.heads, s.queries, s.keys);
  }
  double &at(int64_t b, int64_t h, int64_t i, int64_t j) {
    return v[((b * heads + h) * queries + i) * keys + j];
  }
  double at(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return v[((b * heads + h) * queries + i) * keys + j];
  }
};

/// Which keys each query may attend to (the doc's M: 0 or -inf).
struct AttentionMask {
  /// Query i sees keys j <= i (lm and decoder self-attention).
  bool causal = false;
  /// [B, keys], 1 = real token; null when every key is real.
  const uint8_t *keyPadding = nullptr;
  int64_t keys = 0;

  bool visible(int64_t b, int64_t i, int64_t j) const {
    if (causal && j > i) {
      return false;
    }
    return !keyPadding || keyPadding[b * keys + j] != 0;
  }
};

/// The parameters and, while the backward pass runs, their gradients.
class Weights {
public:
  Weights(const ArrayMap &params, ArrayMap &gradients)
      : params_(params), gradients_(gradients) {}

  /// The values of `name` (evaluate() checked that every parameter exists).
  const double *operator[](const std::string &name) const {
    return params_.at(name).data.data();
  }
  /// Where d loss / d `name` accumulates; null for a parameter that is not
  /// trained (a fixed random R), whose gradient is simply not computed.
  double *grad(const std::string &name) const {
    auto it = gradients_.find(name);
    return it == gradients_.end() ? nullptr : it->second.data.data();
  }

private:
  const ArrayMap &params_;
  ArrayMap &gradients_;
};

/// What every block needs: the description and the weights.
struct Context {
  const ModelConfig &config;
  Weights w;
};

/// `base + offset`, keeping null (no gradient wanted) null.
double *shifted(double *base, int64_t offset) {
  return base ? base + offset : nullptr;
}

//===----------------------------------------------------------------------===//
// Linear: y = x W + b, W is [in, out] (weights multiply from the right)
//===----------------------------------------------------------------------===//

/// `b` may be null (no bias).
Matrix linearForward(const Matrix &x, const double *w, const double *b,
                     int64_t out) {
  Matrix y(x.rows, out);
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double acc = b ? b[o] : 0.0;
      for (int64_t i = 0; i < x.cols; ++i) {
        acc += x.at(r, i) * w[i * out + o];
      }
      y.at(r, o) = acc;
    }
  }
  return y;
}

/// Returns dx = dy W^T and accumulates dW += x^T dy, db += sum_rows dy
/// (`dw`, `db` may be null).
Matrix linearBackward(const Matrix &x, const double *w, const Matrix &dy,
                      double *dw, double *db) {
  int64_t out = dy.cols;
  Matrix dx(x.rows, x.cols);
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t i = 0; i < x.cols; ++i) {
      double acc = 0.0;
      for (int64_t o = 0; o < out; ++o) {
        acc += dy.at(r, o) * w[i * out + o];
      }
      dx.at(r, i) = acc;
    }
  }
  if (dw) {
    for (int64_t i = 0; i < x.cols; ++i) {
      for (int64_t o = 0; o < out; ++o) {
        double acc = 0.0;
        for (int64_t r = 0; r < x.rows; ++r) {
          acc += x.at(r, i) * dy.at(r, o);
        }
        dw[i * out + o] += acc;
      }
    }
  }
  if (db) {
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t r = 0; r < x.rows; ++r) {
        db[o] += dy.at(r, o);
      }
    }
  }
  return dx;
}

//===----------------------------------------------------------------------===//
// Layer norm over the features, biased variance
//===----------------------------------------------------------------------===//

struct LayerNormCache {
  /// (x - mean) * rstd, before weight and bias.
  Matrix normalized;
  /// 1 / sqrt(var + eps) per row.
  std::vector<double> rstd;
};

Matrix layerNormForward(const Matrix &x, const double *weight,
                        const double *bias, double epsilon,
                        LayerNormCache &cache) {
  cache.normalized = Matrix(x.rows, x.cols);
  cache.rstd.assign(static_cast<size_t>(x.rows), 0.0);
  Matrix y(x.rows, x.cols);
  for (int64_t r = 0; r < x.rows; ++r) {
    double mean = 0.0;
    for (int64_t c = 0; c < x.cols; ++c) {
      mean += x.at(r, c);
    }
    mean /= static_cast<double>(x.cols);
    double var = 0.0;
    for (int64_t c = 0; c < x.cols; ++c) {
      var += (x.at(r, c) - mean) * (x.at(r, c) - mean);
    }
    var /= static_cast<double>(x.cols);
    double rstd = 1.0 / std::sqrt(var + epsilon);
    cache.rstd[r] = rstd;
    for (int64_t c = 0; c < x.cols; ++c) {
      double xhat = (x.at(r, c) - mean) * rstd;
      cache.normalized.at(r, c) = xhat;
      y.at(r, c) = xhat * weight[c] + bias[c];
    }
  }
  return y;
}

/// With g = dy * weight: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
/// the mean and variance both depending on every input of the row.
Matrix layerNormBackward(const Matrix &dy, const double *weight,
                         const LayerNormCache &cache, double *dweight,
                         double *dbias) {
  const Matrix &xhat = cache.normalized;
  Matrix dx(dy.rows, dy.cols);
  double cols = static_cast<double>(dy.cols);
  for (int64_t r = 0; r < dy.rows; ++r) {
    double meanG = 0.0, meanGX = 0.0;
    for (int64_t c = 0; c < dy.cols; ++c) {
      double g = dy.at(r, c) * weight[c];
      meanG += g;
      meanGX += g * xhat.at(r, c);
    }
    meanG /= cols;
    meanGX /= cols;
    for (int64_t c = 0; c < dy.cols; ++c) {
      double g = dy.at(r, c) * weight[c];
      dx.at(r, c) = cache.rstd[r] * (g - meanG - xhat.at(r, c) * meanGX);
      if (dweight) {
        dweight[c] += dy.at(r, c) * xhat.at(r, c);
      }
      if (dbias) {
        dbias[c] += dy.at(r, c);
      }
    }
  }
  return dx;
}

//===----------------------------------------------------------------------===//
// Embedding plus learned absolute positions
//===----------------------------------------------------------------------===//

/// x[(b, i)] = table[tokens[b, i]] + positions[i].
Matrix embedForward(const std::vector<int32_t> &tokens, int64_t batch,
                    int64_t len, const double *table, const double *positions,
                    int64_t dim) {
  Matrix x(batch * len, dim);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < len; ++i) {
      int64_t token = tokens[b * len + i];
      for (int64_t c = 0; c < dim; ++c) {
        x.at(b * len + i, c) = table[token * dim + c] + positions[i * dim + c];
      }
    }
  }
  return x;
}

/// Scatters dx back into the rows that were read (a token used twice
/// receives both contributions).
void embedBackward(const Matrix &dx, const std::vector<int32_t> &tokens,
                   int64_t batch, int64_t len, double *dtable,
                   double *dpositions) {
  int64_t dim = dx.cols;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < len; ++i) {
      int64_t token = tokens[b * len + i];
      for (int64_t c = 0; c < dim; ++c) {
        double g = dx.at(b * len + i, c);
        if (dtable) {
          dtable[token * dim + c] += g;
        }
        if (dpositions) {
          dpositions[i * dim + c] += g;
        }
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Activations: relu and the exact (erf) GELU
//===----------------------------------------------------------------------===//

double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

/// d/dx [x Phi(x)] = Phi(x) + x phi(x).
double geluDerivative(double x) {
  double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
  double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
  return cdf + x * pdf;
}

Matrix activationForward(Activation activation, const Matrix &pre) {
  Matrix y(pre.rows, pre.cols);
  for (size_t i = 0; i < pre.v.size(); ++i) {
    y.v[i] = activation == Activation::Relu ? std::max(pre.v[i], 0.0)
                                            : gelu(pre.v[i]);
  }
  return y;
}

/// relu'(0) is taken as 0, as PyTorch does.
Matrix activationBackward(Activation activation, const Matrix &pre,
                          const Matrix &dy) {
  Matrix dpre(pre.rows, pre.cols);
  for (size_t i = 0; i < pre.v.size(); ++i) {
    double slope = activation == Activation::Relu ? (pre.v[i] > 0.0 ? 1.0 : 0.0)
                                                  : geluDerivative(pre.v[i]);
    dpre.v[i] = slope * dy.v[i];
  }
  return dpre;
}

//===----------------------------------------------------------------------===//
// Masked softmax and mixing the values
//===----------------------------------------------------------------------===//

/// Softmax of each query's scores over its visible keys. Hidden keys get
/// probability exactly 0 (the -inf of M), and a query that sees no key at all
/// gets an all-zero row, hence a zero output.
Scores maskedSoftmaxForward(const Scores &s, const AttentionMask &mask) {
  Scores p = Scores::like(s);
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.queries; ++i) {
        bool any = false;
        double max = 0.0;
        for (int64_t j = 0; j < s.keys; ++j) {
          if (mask.visible(b, i, j) && (!any || s.at(b, h, i, j) > max)) {
            max = s.at(b, h, i, j);
            any = true;
          }
        }
        if (!any) {
          continue;
        }
        double sum = 0.0;
        for (int64_t j = 0; j < s.keys; ++j) {
          if (mask.visible(b, i, j)) {
            p.at(b, h, i, j) = std::exp(s.at(b, h, i, j) - max);
            sum += p.at(b, h, i, j);
          }
        }
        for (int64_t j = 0; j < s.keys; ++j) {
          p.at(b, h, i, j) /= sum;
        }
      }
    }
  }
  return p;
}

/// dS_j = P_j (dP_j - sum_k P_k dP_k): the softmax Jacobian. Hidden keys and
/// empty rows have P = 0 and so get no gradient.
Scores maskedSoftmaxBackward(const Scores &p, const Scores &dp) {
  Scores ds = Scores::like(p);
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t h = 0; h < p.heads; ++h) {
      for (int64_t i = 0; i < p.queries; ++i) {
        double dot = 0.0;
        for (int64_t j = 0; j < p.keys; ++j) {
          dot += p.at(b, h, i, j) * dp.at(b, h, i, j);
        }
        for (int64_t j = 0; j < p.keys; ++j) {
          ds.at(b, h, i, j) = p.at(b, h, i, j) * (dp.at(b, h, i, j) - dot);
        }
      }
    }
  }
  return ds;
}

/// context[(b, i), h*d + c] = sum_j P[b, h, i, j] values[(b, j), h*d + c]:
/// each head mixes its own d columns of the values; the heads' outputs sit
/// side by side (the doc's concat_h).
Matrix mixValuesForward(const Scores &p, const Matrix &values) {
  int64_t d = values.cols / p.heads;
  Matrix context(p.batch * p.queries, values.cols);
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t h = 0; h < p.heads; ++h) {
      for (int64_t i = 0; i < p.queries; ++i) {
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < p.keys; ++j) {
            acc += p.at(b, h, i, j) * values.at(b * p.keys + j, h * d + c);
          }
          context.at(b * p.queries + i, h * d + c) = acc;
        }
      }
    }
  }
  return context;
}

/// dP[b, h, i, j] = dcontext_(b,i),h . values_(b,j),h and
/// dvalues_(b,j),h = sum_i P[b, h, i, j] dcontext_(b,i),h.
void mixValuesBackward(const Scores &p, const Matrix &values,
                       const Matrix &dcontext, Scores &dp, Matrix &dvalues) {
  int64_t d = values.cols / p.heads;
  dp = Scores::like(p);
  dvalues = Matrix(values.rows, values.cols);
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t h = 0; h < p.heads; ++h) {
      for (int64_t i = 0; i < p.queries; ++i) {
        for (int64_t j = 0; j < p.keys; ++j) {
          double acc = 0.0;
          for (int64_t c = 0; c < d; ++c) {
            double g = dcontext.at(b * p.queries + i, h * d + c);
            acc += g * values.at(b * p.keys + j, h * d + c);
            dvalues.at(b * p.keys + j, h * d + c) += p.at(b, h, i, j) * g;
          }
          dp.at(b, h, i, j) = acc;
        }
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Score functions S_h (PAPER.md), each with its backward pass
//===----------------------------------------------------------------------===//

//--- dot: (xq Wq)_h (xk Wk)_h^T / sqrt(d) -----------------------------------//

struct DotScoresCache {
  Matrix q, k;
};

Scores dotScoresForward(const Matrix &xq, const Matrix &xk, const double *wq,
                        const double *wk, int64_t batch, int64_t heads,
                        DotScoresCache &cache) {
  int64_t dim = xq.cols, d = dim / heads;
  int64_t queries = xq.rows / batch, keys = xk.rows / batch;
  double scale = 1.0 / std::sqrt(static_cast<double>(d));
  cache.q = linearForward(xq, wq, nullptr, dim);
  cache.k = linearForward(xk, wk, nullptr, dim);
  Scores s(batch, heads, queries, keys);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < queries; ++i) {
        for (int64_t j = 0; j < keys; ++j) {
          double acc = 0.0;
          for (int64_t c = 0; c < d; ++c) {
            acc += cache.q.at(b * queries + i, h * d + c) *
                   cache.k.at(b * keys + j, h * d + c);
          }
          s.at(b, h, i, j) = acc * scale;
        }
      }
    }
  }
  return s;
}

/// Gives the gradients of both inputs separately: self-attention adds them,
/// cross-attention sends dxk to the encoder.
void dotScoresBackward(const Scores &ds, const Matrix &xq, const Matrix &xk,
                       const double *wq, const double *wk,
                       const DotScoresCache &cache, double *dwq, double *dwk,
                       Matrix &dxq, Matrix &dxk) {
  int64_t dim = xq.cols, d = dim / ds.heads;
  double scale = 1.0 / std::sqrt(static_cast<double>(d));
  Matrix dq(cache.q.rows, dim), dk(cache.k.rows, dim);
  for (int64_t b = 0; b < ds.batch; ++b) {
    for (int64_t h = 0; h < ds.heads; ++h) {
      for (int64_t i = 0; i < ds.queries; ++i) {
        for (int64_t j = 0; j < ds.keys; ++j) {
          double g = ds.at(b, h, i, j) * scale;
          for (int64_t c = 0; c < d; ++c) {
            int64_t qi = b * ds.queries + i, kj = b * ds.keys + j;
            dq.at(qi, h * d + c) += g * cache.k.at(kj, h * d + c);
            dk.at(kj, h * d + c) += g * cache.q.at(qi, h * d + c);
          }
        }
      }
    }
  }
  dxq = linearBackward(xq, wq, dq, dwq, nullptr);
  dxk = linearBackward(xk, wk, dk, dwk, nullptr);
}

//--- The per-head hidden layer of dense and factorized dense ----------------//

/// hidden_h = relu(x W1_h + b1_h), W1 is [H, D, k] and b1 [H, k].
struct HeadHiddenCache {
  std::vector<Matrix> pre, hidden;
};

void headHiddenForward(const Matrix &x, const double *w1, const double *b1,
                       int64_t heads, int64_t k, HeadHiddenCache &cache) {
  cache.pre.clear();
  cache.hidden.clear();
  for (int64_t h = 0; h < heads; ++h) {
    cache.pre.push_back(linearForward(x, w1 + h * x.cols * k, b1 + h * k, k));
    cache.hidden.push_back(
        activationForward(Activation::Relu, cache.pre.back()));
  }
}

/// Takes d loss / d hidden_h for every head; returns d loss / d x.
Matrix headHiddenBackward(const Matrix &x, const double *w1,
                          const std::vector<Matrix> &dhidden,
                          const HeadHiddenCache &cache, double *dw1,
                          double *db1) {
  int64_t k = cache.pre.front().cols;
  Matrix dx(x.rows, x.cols);
  for (size_t h = 0; h < dhidden.size(); ++h) {
    int64_t head = static_cast<int64_t>(h);
    Matrix dpre =
        activationBackward(Activation::Relu, cache.pre[h], dhidden[h]);
    addInto(dx, linearBackward(x, w1 + head * x.cols * k, dpre,
                               shifted(dw1, head * x.cols * k),
                               shifted(db1, head * k)));
  }
  return dx;
}

//--- dense: hidden_h W2_h[:, 0:N] + b2_h[0:N] ------------------------------//

/// Row i depends on token i only. W2 is [H, k, L] and b2 [H, L]; only the
/// first N of the L columns are used.
Scores denseScoresForward(const Matrix &x, const double *w1, const double *b1,
                          const double *w2, const double *b2, int64_t batch,
                          int64_t heads, int64_t k, int64_t maxLen,
                          HeadHiddenCache &cache) {
  int64_t n = x.rows / batch;
  headHiddenForward(x, w1, b1, heads, k, cache);
  Scores s(batch, heads, n, n);
  for (int64_t h = 0; h < heads; ++h) {
    const Matrix &hidden = cache.hidden[h];
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double acc = b2[h * maxLen + j];
          for (int64_t c = 0; c < k; ++c) {
            acc += hidden.at(b * n + i, c) * w2[(h * k + c) * maxLen + j];
          }
          s.at(b, h, i, j) = acc;
        }
      }
    }
  }
  return s;
}

Matrix denseScoresBackward(const Scores &ds, const Matrix &x, const double *w1,
                           const double *w2, int64_t k, int64_t maxLen,
                           const HeadHiddenCache &cache, double *dw1,
                           double *db1, double *dw2, double *db2) {
  int64_t n = ds.queries;
  std::vector<Matrix> dhidden;
  for (int64_t h = 0; h < ds.heads; ++h) {
    const Matrix &hidden = cache.hidden[h];
    Matrix dh(x.rows, k);
    for (int64_t b = 0; b < ds.batch; ++b) {
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double g = ds.at(b, h, i, j);
          if (db2) {
            db2[h * maxLen + j] += g;
          }
          for (int64_t c = 0; c < k; ++c) {
            int64_t w = (h * k + c) * maxLen + j;
            dh.at(b * n + i, c) += g * w2[w];
            if (dw2) {
              dw2[w] += g * hidden.at(b * n + i, c);
            }
          }
        }
      }
    }
    dhidden.push_back(std::move(dh));
  }
  return headHiddenBackward(x, w1, dhidden, cache, dw1, db1);
}

//--- random: R_h[0:N, 0:N] --------------------------------------------------//

/// No dependence on x: every batch element sees the same scores.
Scores randomScoresForward(const double *r, int64_t batch, int64_t heads,
                           int64_t n, int64_t maxLen) {
  Scores s(batch, heads, n, n);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          s.at(b, h, i, j) = r[(h * maxLen + i) * maxLen + j];
        }
      }
    }
  }
  return s;
}

/// dR sums over the batch; a fixed R (dr null) gets nothing.
void randomScoresBackward(const Scores &ds, int64_t maxLen, double *dr) {
  if (!dr) {
    return;
  }
  for (int64_t b = 0; b < ds.batch; ++b) {
    for (int64_t h = 0; h < ds.heads; ++h) {
      for (int64_t i = 0; i < ds.queries; ++i) {
        for (int64_t j = 0; j < ds.keys; ++j) {
          dr[(h * maxLen + i) * maxLen + j] += ds.at(b, h, i, j);
        }
      }
    }
  }
}

//--- factorized random: (R1_h R2_h^T)[0:N, 0:N] -----------------------------//

/// R1 and R2 are [H, L, r]; only their first N rows take part.
Scores factorizedRandomScoresForward(const double *r1, const double *r2,
                                     int64_t batch, int64_t heads, int64_t n,
                                     int64_t maxLen, int64_t rank) {
  Scores s(batch, heads, n, n);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0.0;
          for (int64_t t = 0; t < rank; ++t) {
            acc += r1[(h * maxLen + i) * rank + t] *
                   r2[(h * maxLen + j) * rank + t];
          }
          s.at(b, h, i, j) = acc;
        }
      }
    }
  }
  return s;
}

void factorizedRandomScoresBackward(const Scores &ds, const double *r1,
                                    const double *r2, int64_t maxLen,
                                    int64_t rank, double *dr1, double *dr2) {
  for (int64_t b = 0; b < ds.batch; ++b) {
    for (int64_t h = 0; h < ds.heads; ++h) {
      for (int64_t i = 0; i < ds.queries; ++i) {
        for (int64_t j = 0; j < ds.keys; ++j) {
          double g = ds.at(b, h, i, j);
          for (int64_t t = 0; t < rank; ++t) {
            int64_t a = (h * maxLen + i) * rank + t;
            int64_t c = (h * maxLen + j) * rank + t;
            if (dr1) {
              dr1[a] += g * r2[c];
            }
            if (dr2) {
              dr2[c] += g * r1[a];
            }
          }
        }
      }
    }
  }
}

//--- factorized dense: C_i[p*b + q] = A_i[p] B_i[q], first N columns -------//

/// A_h = hidden_h WA_h + bA_h [rows, a] and B_h = hidden_h WB_h + bB_h
/// [rows, b], sharing the hidden layer; their outer product per row,
/// flattened (a*b = L), gives row i's scores.
struct FactorizedDenseCache {
  HeadHiddenCache hidden;
  std::vector<Matrix> a, b;
};

struct FactorizedDenseWeights {
  const double *w1, *b1, *wa, *ba, *wb, *bb;
  int64_t k, a, b;
};

Scores factorizedDenseScoresForward(const Matrix &x,
                                    const FactorizedDenseWeights &p,
                                    int64_t batch, int64_t heads,
                                    FactorizedDenseCache &cache) {
  int64_t n = x.rows / batch;
  headHiddenForward(x, p.w1, p.b1, heads, p.k, cache.hidden);
  cache.a.clear();
  cache.b.clear();
  Scores s(batch, heads, n, n);
  for (int64_t h = 0; h < heads; ++h) {
    const Matrix &hidden = cache.hidden.hidden[h];
    cache.a.push_back(
        linearForward(hidden, p.wa + h * p.k * p.a, p.ba + h * p.a, p.a));
    cache.b.push_back(
        linearForward(hidden, p.wb + h * p.k * p.b, p.bb + h * p.b, p.b));
    for (int64_t bi = 0; bi < batch; ++bi) {
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          s.at(bi, h, i, j) = cache.a[h].at(bi * n + i, j / p.b) *
                              cache.b[h].at(bi * n + i, j % p.b);
        }
      }
    }
  }
  return s;
}

/// Gradients of the weights of `p`, in the same order (null = not wanted).
struct FactorizedDenseGrads {
  double *w1, *b1, *wa, *ba, *wb, *bb;
};

Matrix factorizedDenseScoresBackward(const Scores &ds, const Matrix &x,
                                     const FactorizedDenseWeights &p,
                                     const FactorizedDenseCache &cache,
                                     const FactorizedDenseGrads &g) {
  int64_t n = ds.queries;
  std::vector<Matrix> dhidden;
  for (int64_t h = 0; h < ds.heads; ++h) {
    const Matrix &a = cache.a[h], &b = cache.b[h];
    Matrix da(a.rows, a.cols), db(b.rows, b.cols);
    for (int64_t bi = 0; bi < ds.batch; ++bi) {
      for (int64_t i = 0; i < n; ++i) {
        int64_t r = bi * n + i;
        for (int64_t j = 0; j < n; ++j) {
          double grad = ds.at(bi, h, i, j);
          da.at(r, j / p.b) += grad * b.at(r, j % p.b);
          db.at(r, j % p.b) += grad * a.at(r, j / p.b);
        }
      }
    }
    const Matrix &hidden = cache.hidden.hidden[h];
    Matrix dh =
        linearBackward(hidden, p.wa + h * p.k * p.a, da,
                       shifted(g.wa, h * p.k * p.a), shifted(g.ba, h * p.a));
    addInto(dh, linearBackward(hidden, p.wb + h * p.k * p.b, db,
                               shifted(g.wb, h * p.k * p.b),
                               shifted(g.bb, h * p.b)));
    dhidden.push_back(std::move(dh));
  }
  return headHiddenBackward(x, p.w1, dhidden, cache.hidden, g.w1, g.b1);
}

//--- Dispatch over the attention spec, and mixtures -------------------------//

/// Everything the backward pass of one spec's scores needs.
struct ScoreCache {
  DotScoresCache dot;
  HeadHiddenCache dense;
  FactorizedDenseCache factorizedDense;
  /// mixture: the parts' scores and caches, and alpha = softmax(logits_h),
  /// [H, m].
  std::vector<Scores> partScores;
  std::vector<ScoreCache> parts;
  std::vector<double> alpha;
};

FactorizedDenseWeights factorizedDenseWeights(const Context &ctx,
                                              const std::string &p,
                                              const AttentionSpec &spec) {
  const Weights &w = ctx.w;
  return {w[p + ".w1"], w[p + ".b1"], w[p + ".wa"], w[p + ".ba"], w[p + ".wb"],
          w[p + ".bb"], spec.hidden,  spec.a,       spec.b};
}

/// S_h(x) of a self-attention layer whose parameters start with `attn`
/// ("layers.0.attn"); x is the sublayer's input, [B * N, D].
Scores selfScoresForward(const Context &ctx, const AttentionSpec &spec,
                         const std::string &attn, const Matrix &x,
                         int64_t batch, ScoreCache &cache) {
  const Weights &w = ctx.w;
  int64_t heads = ctx.config.heads, maxLen = ctx.config.maxLen;
  int64_t n = x.rows / batch;
  switch (spec.kind) {
  case AttentionKind::Dot:
    return dotScoresForward(x, x, w[attn + ".dot.q.weight"],
                            w[attn + ".dot.k.weight"], batch, heads, cache.dot);
  case AttentionKind::Dense:
    return denseScoresForward(x, w[attn + ".dense.w1"], w[attn + ".dense.b1"],
                              w[attn + ".dense.w2"], w[attn + ".dense.b2"],
                              batch, heads, spec.hidden, maxLen, cache.dense);
  case AttentionKind::Random:
    return randomScoresForward(w[attn + ".random.R"], batch, heads, n, maxLen);
  case AttentionKind::FactorizedRandom:
    return factorizedRandomScoresForward(w[attn + ".factorized_random.R1"],
                                         w[attn + ".factorized_random.R2"],
                                         batch, heads, n, maxLen, spec.rank);
  case AttentionKind::FactorizedDense:
    return factorizedDenseScoresForward(
        x, factorizedDenseWeights(ctx, attn + ".factorized_dense", spec), batch,
        heads, cache.factorizedDense);
  case AttentionKind::Mixture: {
    // The parts' LOGITS are mixed before the one softmax (PAPER.md):
    // S_h = sum_m alpha_{h,m} S_{h,m}, alpha_h = softmax(mixture.logits_h).
    int64_t m = static_cast<int64_t>(spec.parts.size());
    const double *logits = w[attn + ".mixture.logits"];
    cache.alpha.assign(static_cast<size_t>(heads * m), 0.0);
    for (int64_t h = 0; h < heads; ++h) {
      double max = logits[h * m];
      for (int64_t p = 1; p < m; ++p) {
        max = std::max(max, logits[h * m + p]);
      }
      double sum = 0.0;
      for (int64_t p = 0; p < m; ++p) {
        cache.alpha[h * m + p] = std::exp(logits[h * m + p] - max);
        sum += cache.alpha[h * m + p];
      }
      for (int64_t p = 0; p < m; ++p) {
        cache.alpha[h * m + p] /= sum;
      }
    }
    cache.parts.assign(static_cast<size_t>(m), ScoreCache());
    cache.partScores.clear();
    Scores s(batch, heads, n, n);
    for (int64_t p = 0; p < m; ++p) {
      cache.partScores.push_back(selfScoresForward(ctx, spec.parts[p], attn, x,
                                                   batch, cache.parts[p]));
      const Scores &part = cache.partScores.back();
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t h = 0; h < heads; ++h) {
          for (int64_t i = 0; i < n; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              s.at(b, h, i, j) += cache.alpha[h * m + p] * part.at(b, h, i, j);
            }
          }
        }
      }
    }
    return s;
  }
  }
  return Scores();
}

/// Accumulates the score parameters' gradients; returns d loss / d x through
/// the scores (zero for random and factorized random, which ignore x).
Matrix selfScoresBackward(const Context &ctx, const AttentionSpec &spec,
                          const std::string &attn, const Matrix &x,
                          const Scores &ds, const ScoreCache &cache) {
  const Weights &w = ctx.w;
  int64_t maxLen = ctx.config.maxLen;
  Matrix dx(x.rows, x.cols);
  switch (spec.kind) {
  case AttentionKind::Dot: {
    Matrix dxq, dxk;
    dotScoresBackward(ds, x, x, w[attn + ".dot.q.weight"],
                      w[attn + ".dot.k.weight"], cache.dot,
                      w.grad(attn + ".dot.q.weight"),
                      w.grad(attn + ".dot.k.weight"), dxq, dxk);
    addInto(dxq, dxk);
    return dxq;
  }
  case AttentionKind::Dense:
    return denseScoresBackward(
        ds, x, w[attn + ".dense.w1"], w[attn + ".dense.w2"], spec.hidden,
        maxLen, cache.dense, w.grad(attn + ".dense.w1"),
        w.grad(attn + ".dense.b1"), w.grad(attn + ".dense.w2"),
        w.grad(attn + ".dense.b2"));
  case AttentionKind::Random:
    randomScoresBackward(ds, maxLen, w.grad(attn + ".random.R"));
    return dx;
  case AttentionKind::FactorizedRandom:
    factorizedRandomScoresBackward(ds, w[attn + ".factorized_random.R1"],
                                   w[attn + ".factorized_random.R2"], maxLen,
                                   spec.rank,
                                   w.grad(attn + ".factorized_random.R1"),
                                   w.grad(attn + ".factorized_random.R2"));
    return dx;
  case AttentionKind::FactorizedDense: {
    std::string p = attn + ".factorized_dense";
    FactorizedDenseGrads g{w.grad(p + ".w1"), w.grad(p + ".b1"),
                           w.grad(p + ".wa"), w.grad(p + ".ba"),
                           w.grad(p + ".wb"), w.grad(p + ".bb")};
    return factorizedDenseScoresBackward(
        ds, x, factorizedDenseWeights(ctx, p, spec), cache.factorizedDense, g);
  }
  case AttentionKind::Mixture: {
    // dS_m = alpha_m dS; d alpha_m = <dS, S_m>; then the softmax Jacobian
    // takes d alpha to d logits.
    int64_t heads = ds.heads, m = static_cast<int64_t>(spec.parts.size());
    std::vector<double> dalpha(static_cast<size_t>(heads * m), 0.0);
    for (int64_t p = 0; p < m; ++p) {
      const Scores &part = cache.partScores[p];
      Scores dpart = Scores::like(ds);
      for (int64_t b = 0; b < ds.batch; ++b) {
        for (int64_t h = 0; h < heads; ++h) {
          for (int64_t i = 0; i < ds.queries; ++i) {
            for (int64_t j = 0; j < ds.keys; ++j) {
              double g = ds.at(b, h, i, j);
              dalpha[h * m + p] += g * part.at(b, h, i, j);
              dpart.at(b, h, i, j) = cache.alpha[h * m + p] * g;
            }
          }
        }
      }
      addInto(dx, selfScoresBackward(ctx, spec.parts[p], attn, x, dpart,
                                     cache.parts[p]));
    }
    if (double *dlogits = w.grad(attn + ".mixture.logits")) {
      for (int64_t h = 0; h < heads; ++h) {
        double dot = 0.0;
        for (int64_t p = 0; p < m; ++p) {
          dot += cache.alpha[h * m + p] * dalpha[h * m + p];
        }
        for (int64_t p = 0; p < m; ++p) {
          dlogits[h * m + p] +=
              cache.alpha[h * m + p] * (dalpha[h * m + p] - dot);
        }
      }
    }
    return dx;
  }
  }
  return dx;
}

//===----------------------------------------------------------------------===//
// Attention blocks: softmax(S + M) V, then the output projection
//===----------------------------------------------------------------------===//

struct AttentionCache {
  /// Self-attention scores (any spec) or cross-attention's dot scores.
  ScoreCache scores;
  Scores probs;
  Matrix values, context;
};

/// Attn(x) = concat_h(softmax(S_h(x) + M) (x Wv)_h) Wo.
Matrix selfAttentionForward(const Context &ctx, const AttentionSpec &spec,
                            const std::string &attn, const Matrix &x,
                            int64_t batch, const AttentionMask &mask,
                            AttentionCache &cache) {
  const Weights &w = ctx.w;
  Scores s = selfScoresForward(ctx, spec, attn, x, batch, cache.scores);
  cache.probs = maskedSoftmaxForward(s, mask);
  cache.values = linearForward(x, w[attn + ".v.weight"], nullptr, x.cols);
  cache.context = mixValuesForward(cache.probs, cache.values);
  return linearForward(cache.context, w[attn + ".o.weight"], nullptr, x.cols);
}

/// x reaches the output both through the values and through the scores.
Matrix selfAttentionBackward(const Context &ctx, const AttentionSpec &spec,
                             const std::string &attn, const Matrix &x,
                             const Matrix &dout, const AttentionCache &cache) {
  const Weights &w = ctx.w;
  Matrix dcontext = linearBackward(cache.context, w[attn + ".o.weight"], dout,
                                   w.grad(attn + ".o.weight"), nullptr);
  Scores dprobs;
  Matrix dvalues;
  mixValuesBackward(cache.probs, cache.values, dcontext, dprobs, dvalues);
  Matrix dx = linearBackward(x, w[attn + ".v.weight"], dvalues,
                             w.grad(attn + ".v.weight"), nullptr);
  Scores ds = maskedSoftmaxBackward(cache.probs, dprobs);
  addInto(dx, selfScoresBackward(ctx, spec, attn, x, ds, cache.scores));
  return dx;
}

/// Cross(x, enc) = concat_h(softmax((x Wq)_h (enc Wk)_h^T / sqrt(d) + M_src)
/// (enc Wv)_h) Wo; always dot-product (PAPER.md).
Matrix crossAttentionForward(const Context &ctx, const std::string &cross,
                             const Matrix &x, const Matrix &enc, int64_t batch,
                             const AttentionMask &mask, AttentionCache &cache) {
  const Weights &w = ctx.w;
  Scores s =
      dotScoresForward(x, enc, w[cross + ".q.weight"], w[cross + ".k.weight"],
                       batch, ctx.config.heads, cache.scores.dot);
  cache.probs = maskedSoftmaxForward(s, mask);
  cache.values = linearForward(enc, w[cross + ".v.weight"], nullptr, x.cols);
  cache.context = mixValuesForward(cache.probs, cache.values);
  return linearForward(cache.context, w[cross + ".o.weight"], nullptr, x.cols);
}

/// Returns d loss / d x and accumulates d loss / d enc into `denc`.
Matrix crossAttentionBackward(const Context &ctx, const std::string &cross,
                              const Matrix &x, const Matrix &enc,
                              const Matrix &dout, const AttentionCache &cache,
                              Matrix &denc) {
  const Weights &w = ctx.w;
  Matrix dcontext = linearBackward(cache.context, w[cross + ".o.weight"], dout,
                                   w.grad(cross + ".o.weight"), nullptr);
  Scores dprobs;
  Matrix dvalues;
  mixValuesBackward(cache.probs, cache.values, dcontext, dprobs, dvalues);
  addInto(denc, linearBackward(enc, w[cross + ".v.weight"], dvalues,
                               w.grad(cross + ".v.weight"), nullptr));
  Scores ds = maskedSoftmaxBackward(cache.probs, dprobs);
  Matrix dx, dencScores;
  dotScoresBackward(ds, x, enc, w[cross + ".q.weight"], w[cross + ".k.weight"],
                    cache.scores.dot, w.grad(cross + ".q.weight"),
                    w.grad(cross + ".k.weight"), dx, dencScores);
  addInto(denc, dencScores);
  return dx;
}

//===----------------------------------------------------------------------===//
// Feed-forward: act(x W1 + b1) W2 + b2
//===----------------------------------------------------------------------===//

struct FeedForwardCache {
  Matrix pre, act;
};

Matrix feedForwardForward(const Context &ctx, const std::string &ffn,
                          const Matrix &x, FeedForwardCache &cache) {
  const Weights &w = ctx.w;
  cache.pre = linearForward(x, w[ffn + ".w1.weight"], w[ffn + ".w1.bias"],
                            ctx.config.ffn);
  cache.act = activationForward(ctx.config.activation, cache.pre);
  return linearForward(cache.act, w[ffn + ".w2.weight"], w[ffn + ".w2.bias"],
                       x.cols);
}

Matrix feedForwardBackward(const Context &ctx, const std::string &ffn,
                           const Matrix &x, const Matrix &dy,
                           const FeedForwardCache &cache) {
  const Weights &w = ctx.w;
  Matrix dact =
      linearBackward(cache.act, w[ffn + ".w2.weight"], dy,
                     w.grad(ffn + ".w2.weight"), w.grad(ffn + ".w2.bias"));
  Matrix dpre = activationBackward(ctx.config.activation, cache.pre, dact);
  return linearBackward(x, w[ffn + ".w1.weight"], dpre,
                        w.grad(ffn + ".w1.weight"), w.grad(ffn + ".w1.bias"));
}

//===----------------------------------------------------------------------===//
// Residual sublayers, pre- or post-norm
//===----------------------------------------------------------------------===//

/// pre-norm:  y = x + F(LN(x));   post-norm: y = LN(x + F(x)).
struct ResidualCache {
  /// What F read: LN(x) (pre) or x (post).
  Matrix sublayerInput;
  LayerNormCache norm;
};

/// `sublayer(input)` computes F; `norm` is the layer norm's prefix.
template <typename Sublayer>
Matrix residualForward(const Context &ctx, const std::string &norm,
                       const Matrix &x, ResidualCache &cache,
                       Sublayer &&sublayer) {
  const Weights &w = ctx.w;
  double eps = ctx.config.layerNormEpsilon;
  if (ctx.config.norm == NormPlacement::Pre) {
    cache.sublayerInput = layerNormForward(x, w[norm + ".weight"],
                                           w[norm + ".bias"], eps, cache.norm);
    Matrix y = x;
    addInto(y, sublayer(cache.sublayerInput));
    return y;
  }
  cache.sublayerInput = x;
  Matrix sum = x;
  addInto(sum, sublayer(x));
  return layerNormForward(sum, w[norm + ".weight"], w[norm + ".bias"], eps,
                          cache.norm);
}

/// `sublayerBackward(input, dout)` returns d loss / d input of F.
template <typename SublayerBackward>
Matrix residualBackward(const Context &ctx, const std::string &norm,
                        const Matrix &dy, const ResidualCache &cache,
                        SublayerBackward &&sublayerBackward) {
  const Weights &w = ctx.w;
  if (ctx.config.norm == NormPlacement::Pre) {
    Matrix dx = dy;
    addInto(dx, layerNormBackward(sublayerBackward(cache.sublayerInput, dy),
                                  w[norm + ".weight"], cache.norm,
                                  w.grad(norm + ".weight"),
                                  w.grad(norm + ".bias")));
    return dx;
  }
  Matrix dsum =
      layerNormBackward(dy, w[norm + ".weight"], cache.norm,
                        w.grad(norm + ".weight"), w.grad(norm + ".bias"));
  Matrix dx = dsum;
  addInto(dx, sublayerBackward(cache.sublayerInput, dsum));
  return dx;
}

//===----------------------------------------------------------------------===//
// Stacks of layers
//===----------------------------------------------------------------------===//

struct LayerCache {
  ResidualCache attnResidual, crossResidual, ffnResidual;
  AttentionCache attn, cross;
  FeedForwardCache ffn;
};

struct StackCache {
  std::vector<LayerCache> layers;
  LayerNormCache finalNorm;
};

/// What a decoder's cross-attention reads: the encoder's output and its
/// padding mask; the gradient reaching the encoder output accumulates in
/// `gradient`.
struct EncoderMemory {
  const Matrix *output = nullptr;
  AttentionMask mask;
  Matrix *gradient = nullptr;
};

/// Runs the layers `prefix`layers.{i}. over x; `memory` is non-null for a
/// seq2seq decoder (which then has cross-attention).
Matrix stackForward(const Context &ctx, const std::string &prefix,
                    const std::vector<AttentionSpec> &specs, Matrix x,
                    int64_t batch, const AttentionMask &selfMask,
                    const EncoderMemory *memory, StackCache &cache) {
  const Weights &w = ctx.w;
  cache.layers.assign(specs.size(), LayerCache());
  for (size_t i = 0; i < specs.size(); ++i) {
    std::string layer = absl::StrCat(prefix, "layers.", i, ".");
    LayerCache &lc = cache.layers[i];
    x = residualForward(
        ctx, layer + "attn_norm", x, lc.attnResidual, [&](const Matrix &h) {
          return selfAttentionForward(ctx, specs[i], layer + "attn", h, batch,
                                      selfMask, lc.attn);
        });
    if (memory) {
      x = residualForward(
          ctx, layer + "cross_norm", x, lc.crossResidual, [&](const Matrix &h) {
            return crossAttentionForward(ctx, layer + "cross_attn", h,
                                         *memory->output, batch, memory->mask,
                                         lc.cross);
          });
    }
    x = residualForward(
        ctx, layer + "ffn_norm", x, lc.ffnResidual, [&](const Matrix &h) {
          return feedForwardForward(ctx, layer + "ffn", h, lc.ffn);
        });
  }
  if (ctx.config.norm == NormPlacement::Pre) {
    std::string norm = prefix + "final_norm";
    x = layerNormForward(x, w[norm + ".weight"], w[norm + ".bias"],
                         ctx.config.layerNormEpsilon, cache.finalNorm);
  }
  return x;
}

/// The reverse of stackForward: returns d loss / d (stack input).
Matrix stackBackward(const Context &ctx, const std::string &prefix,
                     const std::vector<AttentionSpec> &specs, Matrix dy,
                     const EncoderMemory *memory, const StackCache &cache) {
  const Weights &w = ctx.w;
  if (ctx.config.norm == NormPlacement::Pre) {
    std::string norm = prefix + "final_norm";
    dy = layerNormBackward(dy, w[norm + ".weight"], cache.finalNorm,
                           w.grad(norm + ".weight"), w.grad(norm + ".bias"));
  }
  for (size_t k = specs.size(); k-- > 0;) {
    std::string layer = absl::StrCat(prefix, "layers.", k, ".");
    const LayerCache &lc = cache.layers[k];
    dy = residualBackward(ctx, layer + "ffn_norm", dy, lc.ffnResidual,
                          [&](const Matrix &h, const Matrix &dout) {
                            return feedForwardBackward(ctx, layer + "ffn", h,
                                                       dout, lc.ffn);
                          });
    if (memory) {
      dy = residualBackward(ctx, layer + "cross_norm", dy, lc.crossResidual,
                            [&](const Matrix &h, const Matrix &dout) {
                              return crossAttentionBackward(
                                  ctx, layer + "cross_attn", h, *memory->output,
                                  dout, lc.cross, *memory->gradient);
                            });
    }
    dy = residualBackward(ctx, layer + "attn_norm", dy, lc.attnResidual,
                          [&](const Matrix &h, const Matrix &dout) {
                            return selfAttentionBackward(ctx, specs[k],
                                                         layer + "attn", h,
                                                         dout, lc.attn);
                          });
  }
  return dy;
}

//===----------------------------------------------------------------------===//
// Output heads, pooling and the loss
//===----------------------------------------------------------------------===//

/// logits = x lm_head.weight ([D, V]), or x embed.weight^T when tied.
Matrix lmHeadForward(const Context &ctx, const Matrix &x) {
  int64_t vocab = ctx.config.vocabSize;
  if (!ctx.config.tieEmbeddings) {
    return linearForward(x, ctx.w["lm_head.weight"], nullptr, vocab);
  }
  const double *embed = ctx.w["embed.weight"];
  Matrix logits(x.rows, vocab);
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t v = 0; v < vocab; ++v) {
      double acc = 0.0;
      for (int64_t c = 0; c < x.cols; ++c) {
        acc += x.at(r, c) * embed[v * x.cols + c];
      }
      logits.at(r, v) = acc;
    }
  }
  return logits;
}

/// Tied: the embedding matrix also receives dE[v] += sum_r dlogits[r, v] x_r.
Matrix lmHeadBackward(const Context &ctx, const Matrix &x,
                      const Matrix &dlogits) {
  if (!ctx.config.tieEmbeddings) {
    return linearBackward(x, ctx.w["lm_head.weight"], dlogits,
                          ctx.w.grad("lm_head.weight"), nullptr);
  }
  const double *embed = ctx.w["embed.weight"];
  double *dembed = ctx.w.grad("embed.weight");
  Matrix dx(x.rows, x.cols);
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t v = 0; v < dlogits.cols; ++v) {
      double g = dlogits.at(r, v);
      for (int64_t c = 0; c < x.cols; ++c) {
        dx.at(r, c) += g * embed[v * x.cols + c];
        dembed[v * x.cols + c] += g * x.at(r, c);
      }
    }
  }
  return dx;
}

/// pooled_b = sum_i mask_bi x_bi / max(1, sum_i mask_bi).
Matrix meanPoolForward(const Matrix &x, const std::vector<uint8_t> &mask,
                       int64_t batch, int64_t len) {
  Matrix pooled(batch, x.cols);
  for (int64_t b = 0; b < batch; ++b) {
    double count = 0.0;
    for (int64_t i = 0; i < len; ++i) {
      count += mask[b * len + i] ? 1.0 : 0.0;
    }
    double scale = 1.0 / std::max(1.0, count);
    for (int64_t i = 0; i < len; ++i) {
      if (mask[b * len + i]) {
        for (int64_t c = 0; c < x.cols; ++c) {
          pooled.at(b, c) += x.at(b * len + i, c) * scale;
        }
      }
    }
  }
  return pooled;
}

/// Padding positions get no gradient: they were not pooled.
Matrix meanPoolBackward(const Matrix &dpooled, const std::vector<uint8_t> &mask,
                        int64_t batch, int64_t len) {
  Matrix dx(batch * len, dpooled.cols);
  for (int64_t b = 0; b < batch; ++b) {
    double count = 0.0;
    for (int64_t i = 0; i < len; ++i) {
      count += mask[b * len + i] ? 1.0 : 0.0;
    }
    double scale = 1.0 / std::max(1.0, count);
    for (int64_t i = 0; i < len; ++i) {
      if (mask[b * len + i]) {
        for (int64_t c = 0; c < dpooled.cols; ++c) {
          dx.at(b * len + i, c) = dpooled.at(b, c) * scale;
        }
      }
    }
  }
  return dx;
}

/// Rows whose target is not kIgnoreTarget.
int64_t countTargets(const std::vector<int32_t> &targets) {
  int64_t count = 0;
  for (int32_t t : targets) {
    count += t != kIgnoreTarget;
  }
  return count;
}

/// log sum_v exp(logits[r, v]), shifted by the maximum for stability.
double logSumExp(const Matrix &logits, int64_t r) {
  double max = logits.at(r, 0);
  for (int64_t v = 1; v < logits.cols; ++v) {
    max = std::max(max, logits.at(r, v));
  }
  double sum = 0.0;
  for (int64_t v = 0; v < logits.cols; ++v) {
    sum += std::exp(logits.at(r, v) - max);
  }
  return max + std::log(sum);
}

/// Mean over the counted rows of -log softmax(logits_r)[target_r]; 0 (not
/// NaN) when every target is ignored.
double crossEntropyForward(const Matrix &logits,
                           const std::vector<int32_t> &targets) {
  int64_t count = countTargets(targets);
  if (count == 0) {
    return 0.0;
  }
  double total = 0.0;
  for (int64_t r = 0; r < logits.rows; ++r) {
    if (targets[r] != kIgnoreTarget) {
      total += logSumExp(logits, r) - logits.at(r, targets[r]);
    }
  }
  return total / static_cast<double>(count);
}

/// d loss / d logits_r = (softmax(logits_r) - onehot(target_r)) / count for
/// counted rows, 0 for ignored ones.
Matrix crossEntropyBackward(const Matrix &logits,
                            const std::vector<int32_t> &targets) {
  Matrix dlogits(logits.rows, logits.cols);
  int64_t count = countTargets(targets);
  for (int64_t r = 0; r < logits.rows; ++r) {
    if (targets[r] == kIgnoreTarget) {
      continue;
    }
    double lse = logSumExp(logits, r);
    for (int64_t v = 0; v < logits.cols; ++v) {
      double p = std::exp(logits.at(r, v) - lse);
      dlogits.at(r, v) =
          (p - (v == targets[r] ? 1.0 : 0.0)) / static_cast<double>(count);
    }
  }
  return dlogits;
}

Array toArray(const Matrix &m, std::vector<int64_t> shape) {
  Array array;
  array.shape = std::move(shape);
  array.data = m.v;
  return array;
}

//===----------------------------------------------------------------------===//
// Whole models
//===----------------------------------------------------------------------===//

/// lm: causal decoder stack, logits over the vocabulary at every position.
void runLanguageModel(const Context &ctx, const Batch &in, bool backward,
                      Result &result) {
  const Weights &w = ctx.w;
  int64_t batch = in.batch, n = in.seqLen, dim = ctx.config.dModel;
  const std::vector<AttentionSpec> &specs = ctx.config.decoderAttention;
  Matrix x = embedForward(in.tokens, batch, n, w["embed.weight"],
                          w["pos.weight"], dim);
  AttentionMask causal{/*causal=*/true, nullptr, n};
  StackCache stack;
  Matrix y = stackForward(ctx, "", specs, x, batch, causal, nullptr, stack);
  Matrix logits = lmHeadForward(ctx, y);
  result.logits = toArray(logits, {batch, n, ctx.config.vocabSize});
  result.loss = crossEntropyForward(logits, in.targets);
  if (!backward) {
    return;
  }
  Matrix dy = lmHeadBackward(ctx, y, crossEntropyBackward(logits, in.targets));
  Matrix dx = stackBackward(ctx, "", specs, dy, nullptr, stack);
  embedBackward(dx, in.tokens, batch, n, w.grad("embed.weight"),
                w.grad("pos.weight"));
}

/// encoder: bidirectional stack over the real tokens, mean pooling, linear
/// classifier.
void runEncoder(const Context &ctx, const Batch &in, bool backward,
                Result &result) {
  const Weights &w = ctx.w;
  int64_t batch = in.batch, n = in.seqLen, dim = ctx.config.dModel;
  int64_t classes = ctx.config.numClasses;
  const std::vector<AttentionSpec> &specs = ctx.config.encoderAttention;
  Matrix x = embedForward(in.tokens, batch, n, w["embed.weight"],
                          w["pos.weight"], dim);
  AttentionMask padding{/*causal=*/false, in.mask.data(), n};
  StackCache stack;
  Matrix y = stackForward(ctx, "", specs, x, batch, padding, nullptr, stack);
  Matrix pooled = meanPoolForward(y, in.mask, batch, n);
  Matrix logits = linearForward(pooled, w["classifier.weight"],
                                w["classifier.bias"], classes);
  result.logits = toArray(logits, {batch, classes});
  result.loss = crossEntropyForward(logits, in.labels);
  if (!backward) {
    return;
  }
  Matrix dpooled = linearBackward(
      pooled, w["classifier.weight"], crossEntropyBackward(logits, in.labels),
      w.grad("classifier.weight"), w.grad("classifier.bias"));
  Matrix dy = meanPoolBackward(dpooled, in.mask, batch, n);
  Matrix dx = stackBackward(ctx, "", specs, dy, nullptr, stack);
  embedBackward(dx, in.tokens, batch, n, w.grad("embed.weight"),
                w.grad("pos.weight"));
}

/// seq2seq: the encoder reads the source; the decoder reads the target prefix
/// causally and cross-attends to the encoder output. Both stacks share the
/// embedding and the positions.
void runSeq2Seq(const Context &ctx, const Batch &in, bool backward,
                Result &result) {
  const Weights &w = ctx.w;
  const ModelConfig &c = ctx.config;
  int64_t batch = in.batch, s = in.srcLen, t = in.tgtLen, dim = c.dModel;
  Matrix xs = embedForward(in.source, batch, s, w["embed.weight"],
                           w["pos.weight"], dim);
  AttentionMask sourcePadding{/*causal=*/false, in.sourceMask.data(), s};
  StackCache encoder;
  Matrix enc = stackForward(ctx, "encoder.", c.encoderAttention, xs, batch,
                            sourcePadding, nullptr, encoder);
  Matrix denc(enc.rows, enc.cols);
  EncoderMemory memory{&enc, sourcePadding, &denc};
  Matrix xt = embedForward(in.targetIn, batch, t, w["embed.weight"],
                           w["pos.weight"], dim);
  AttentionMask causal{/*causal=*/true, nullptr, t};
  StackCache decoder;
  Matrix dec = stackForward(ctx, "decoder.", c.decoderAttention, xt, batch,
                            causal, &memory, decoder);
  Matrix logits = lmHeadForward(ctx, dec);
  result.logits = toArray(logits, {batch, t, c.vocabSize});
  result.loss = crossEntropyForward(logits, in.targetOut);
  if (!backward) {
    return;
  }
  Matrix ddec =
      lmHeadBackward(ctx, dec, crossEntropyBackward(logits, in.targetOut));
  Matrix dxt = stackBackward(ctx, "decoder.", c.decoderAttention, ddec, &memory,
                             decoder);
  embedBackward(dxt, in.targetIn, batch, t, w.grad("embed.weight"),
                w.grad("pos.weight"));
  Matrix dxs = stackBackward(ctx, "encoder.", c.encoderAttention, denc, nullptr,
                             encoder);
  embedBackward(dxs, in.source, batch, s, w.grad("embed.weight"),
                w.grad("pos.weight"));
}

//===----------------------------------------------------------------------===//
// Validation of parameters and inputs
//===----------------------------------------------------------------------===//

absl::Status checkParameterMap(const ArrayMap &params,
                               const std::vector<ParamInfo> &table) {
  std::set<std::string> expected;
  for (const ParamInfo &info : table) {
    expected.insert(info.name);
    auto it = params.find(info.name);
    if (it == params.end()) {
      return absl::InvalidArgumentError(absl::StrCat("missing parameter \"",
                                                     info.name, "\" of shape ",
                                                     formatShape(info.shape)));
    }
    if (it->second.shape != info.shape || it->second.numel() != info.numel()) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter \"", info.name, "\" has shape ",
                       formatShape(it->second.shape), ", expected ",
                       formatShape(info.shape)));
    }
  }
  for (const auto &[name, array] : params) {
    if (!expected.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected parameter \"", name, "\" (not part of this model)"));
    }
  }
  return absl::OkStatus();
}

/// `what` is the flag or field that set the length, for the message.
absl::Status checkLength(int64_t len, const char *what,
                         const ModelConfig &config) {
  if (len <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be positive, got ", len));
  }
  if (len > config.maxLen) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " ", len, " exceeds the model's max_len L = ", config.maxLen,
        " (N <= L is required)"));
  }
  return absl::OkStatus();
}

/// Checks size and range of ids; `allowIgnore` admits kIgnoreTarget.
absl::Status checkIds(const std::vector<int32_t> &ids, int64_t size,
                      const char *what, int64_t limit, bool allowIgnore) {
  if (static_cast<int64_t>(ids.size()) != size) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", ids.size(), " entries, expected ", size));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (allowIgnore && ids[i] == kIgnoreTarget) {
      continue;
    }
    if (ids[i] < 0 || ids[i] >= limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, "[", i, "] = ", ids[i], " is outside [0, ", limit,
                       ")", allowIgnore ? " (and is not -100)" : ""));
    }
  }
  return absl::OkStatus();
}

absl::Status checkMask(const std::vector<uint8_t> &mask, int64_t size,
                       const char *what) {
  if (static_cast<int64_t>(mask.size()) != size) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", mask.size(), " entries, expected ", size));
  }
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, "[", i, "] = ", static_cast<int>(mask[i]),
                       " (masks hold 0 or 1)"));
    }
  }
  return absl::OkStatus();
}

absl::Status checkBatch(const ModelConfig &c, const Batch &in) {
  if (in.batch <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch must be positive, got ", in.batch));
  }
  int64_t v = c.vocabSize;
  auto all = [](std::initializer_list<absl::Status> checks) {
    for (const absl::Status &status : checks) {
      if (!status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  };
  switch (c.task) {
  case Task::LM:
    if (absl::Status status = checkLength(in.seqLen, "sequence length", c);
        !status.ok()) {
      return status;
    }
    return all(
        {checkIds(in.tokens, in.batch * in.seqLen, "tokens", v, false),
         checkIds(in.targets, in.batch * in.seqLen, "targets", v, true)});
  case Task::Encoder:
    if (absl::Status status = checkLength(in.seqLen, "sequence length", c);
        !status.ok()) {
      return status;
    }
    return all({checkIds(in.tokens, in.batch * in.seqLen, "tokens", v, false),
                checkMask(in.mask, in.batch * in.seqLen, "mask"),
                checkIds(in.labels, in.batch, "labels", c.numClasses, false)});
  case Task::Seq2Seq:
    if (absl::Status status = checkLength(in.srcLen, "source length", c);
        !status.ok()) {
      return status;
    }
    if (absl::Status status = checkLength(in.tgtLen, "target length", c);
        !status.ok()) {
      return status;
    }
    return all(
        {checkIds(in.source, in.batch * in.srcLen, "source", v, false),
         checkMask(in.sourceMask, in.batch * in.srcLen, "source mask"),
         checkIds(in.targetIn, in.batch * in.tgtLen, "target input", v, false),
         checkIds(in.targetOut, in.batch * in.tgtLen, "target output", v,
                  true)});
  }
  return absl::OkStatus();
}

} // namespace

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

absl::StatusOr<Result> evaluate(const ModelConfig &config,
                                const ArrayMap &params, const Batch &batch,
                                bool withGradients) {
  std::vector<ParamInfo> table = parameterTable(config);
  if (absl::Status status = checkParameterMap(params, table); !status.ok()) {
    return status;
  }
  if (absl::Status status = checkBatch(config, batch); !status.ok()) {
    return status;
  }
  // Only trainable parameters get a gradient buffer; Weights::grad() is null
  // for the others, so a fixed R is never written to.
  ArrayMap gradients;
  if (withGradients) {
    for (const ParamInfo &info : table) {
      if (info.trainable) {
        gradients.emplace(info.name, Array::zeros(info.shape));
      }
    }
  }
  Context ctx{config, Weights(params, gradients)};
  Result result;
  switch (config.task) {
  case Task::LM:
    runLanguageModel(ctx, batch, withGradients, result);
    break;
  case Task::Encoder:
    runEncoder(ctx, batch, withGradients, result);
    break;
  case Task::Seq2Seq:
    runSeq2Seq(ctx, batch, withGradients, result);
    break;
  }
  result.gradients = std::move(gradients);
  return result;
}

Batch makeRandomBatch(const ModelConfig &config, int64_t batch, int64_t seqLen,
                      int64_t srcLen, int64_t tgtLen, uint64_t seed) {
  // Non-positive sizes give empty inputs, which evaluate() then rejects.
  batch = std::max<int64_t>(batch, 0);
  SplitMix64 rng(seed);
  auto below = [&](int64_t n) {
    return n > 0 ? static_cast<int32_t>(rng.next() % static_cast<uint64_t>(n))
                 : 0;
  };
  auto tokens = [&](int64_t count) {
    std::vector<int32_t> ids(static_cast<size_t>(std::max<int64_t>(count, 0)));
    for (int32_t &id : ids) {
      id = below(config.vocabSize);
    }
    return ids;
  };
  // About one target in ten is ignored, so the loss's -100 handling is hit.
  auto targets = [&](int64_t count) {
    std::vector<int32_t> ids = tokens(count);
    for (int32_t &id : ids) {
      if (rng.uniform() < 0.1) {
        id = kIgnoreTarget;
      }
    }
    return ids;
  };
  // Right padding, at least one real token per row.
  auto paddingMask = [&](int64_t len) {
    len = std::max<int64_t>(len, 0);
    std::vector<uint8_t> mask(static_cast<size_t>(batch * len), 0);
    for (int64_t b = 0; b < batch; ++b) {
      int64_t real = 1 + below(len);
      for (int64_t i = 0; i < real; ++i) {
        mask[b * len + i] = 1;
      }
    }
    return mask;
  };

  Batch in;
  in.batch = batch;
  switch (config.task) {
  case Task::LM:
    in.seqLen = seqLen;
    in.tokens = tokens(batch * seqLen);
    in.targets = targets(batch * seqLen);
    break;
  case Task::Encoder:
    in.seqLen = seqLen;
    in.tokens = tokens(batch * seqLen);
    in.mask = paddingMask(seqLen);
    for (int64_t b = 0; b < batch; ++b) {
      in.labels.push_back(below(config.numClasses));
    }
    break;
  case Task::Seq2Seq:
    in.srcLen = srcLen;
    in.tgtLen = tgtLen;
    in.source = tokens(batch * srcLen);
    in.sourceMask = paddingMask(srcLen);
    in.targetIn = tokens(batch * tgtLen);
    in.targetOut = targets(batch * tgtLen);
    break;
  }
  return in;
}

} // namespace synth::reference
