//===- make_test_artifact.cpp - a tiny real artifact for the runtime tests ===//
//
// Usage: synth-make-test-artifact OUT_DIR CXX
// Writes OUT_DIR (an artifact directory, docs/artifact-format.md) holding a
// toy byte-level "language model" compiled with Halide, so that the runtime is
// tested against real AOT kernels rather than mocks:
//
//   k0 toy_k0_embed_scale  h[b,n,d]      = embed[clamp(tokens[b,n]), d] *
//   norm[d] + 1 k1 toy_k1_logits       logits[b,n,v] = sum_d h[b,n,d] *
//   head[d,v] k2 toy_k2_masked_mean  pooled[b,d]   = sum_n mask[b,n] h[b,n,d] /
//   max(1, sum_n mask[b,n]) k3 toy_k3_xent         loss          = mean over
//   targets != -100 of
//                                          logsumexp(logits[b,n,:]) -
//                                          logits[b,n,target]
//
// Entry points: forward (k0, k1), pool (k0, k2; a U8 mask and a nonzero arena
// offset), loss (k0, k1, k3; a rank-0 output). k0 carries the Halide runtime;
// the others are compiled with no_runtime and share it inside kernels.so,
// which CXX links with -shared. This is a test tool: it links libHalide, which
// the runtime itself never does.
//
//===----------------------------------------------------------------------===//

#include "runtime/FileUtil.h"
#include "runtime/Manifest.h"
#include "runtime/Safetensors.h"
#include "runtime/Sha256.h"

#include "Halide.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/stat.h>

namespace {

using namespace Halide;
using synth::DType;
using synth::Tensor;
namespace rt = synth::rt;

// Sizes of the toy model; the tests recompute everything from the manifest
// and the weights, so only this file needs to know them.
constexpr int kBatch = 2, kSeq = 8, kDim = 16, kVocab = 256;
constexpr char kBaseTarget[] = "x86-64-linux-sse41";

int fail(const std::string &message) {
  std::fprintf(stderr, "make_test_artifact: %s\n", message.c_str());
  return 1;
}

//===----------------------------------------------------------------------===//
// Kernels (algorithm, then schedule)
//===----------------------------------------------------------------------===//

void compileEmbedScale(const std::string &object) {
  ImageParam tokens(Int(32), 2, "tokens"), embed(Float(32), 2, "embed");
  ImageParam norm(Float(32), 1, "norm");
  Var d("d"), n("n"), b("b");
  Func h("h");
  Expr row = clamp(tokens(n, b), 0, kVocab - 1);
  h(d, n, b) = embed(d, row) * norm(d) + 1.0f;
  h.vectorize(d, 4);
  h.compile_to_object(object, {tokens, embed, norm}, "toy_k0_embed_scale",
                      Target(kBaseTarget));
}

void compileLogits(const std::string &object) {
  ImageParam h(Float(32), 3, "h"), head(Float(32), 2, "head");
  Var v("v"), n("n"), b("b");
  RDom r(0, h.dim(0).extent(), "r");
  Func logits("logits");
  logits(v, n, b) = 0.0f;
  logits(v, n, b) += h(r, n, b) * head(v, r);
  // Rows in parallel (exercises the thread pool), vocabulary vectorized.
  logits.parallel(b);
  logits.update().parallel(b).vectorize(v, 8);
  logits.compile_to_object(object, {h, head}, "toy_k1_logits",
                           Target(std::string(kBaseTarget) + "-no_runtime"));
}

void compileMaskedMean(const std::string &object) {
  ImageParam h(Float(32), 3, "h"), mask(UInt(8), 2, "mask");
  Var d("d"), b("b");
  RDom r(0, h.dim(1).extent(), "r");
  Func count("count"), sum("sum"), pooled("pooled");
  count(b) = 0.0f;
  count(b) += cast<float>(mask(r, b));
  sum(d, b) = 0.0f;
  sum(d, b) += cast<float>(mask(r, b)) * h(d, r, b);
  pooled(d, b) = sum(d, b) / max(1.0f, count(b));
  count.compute_root();
  sum.compute_root();
  pooled.compile_to_object(object, {h, mask}, "toy_k2_masked_mean",
                           Target(std::string(kBaseTarget) + "-no_runtime"));
}

void compileCrossEntropy(const std::string &object) {
  ImageParam logits(Float(32), 3, "logits"), targets(Int(32), 2, "targets");
  Var n("n"), b("b");
  RDom v(0, logits.dim(0).extent(), "v");
  Func maxLogit("max_logit"), lse("lse"), perPos("per_position");
  maxLogit(n, b) = maximum(logits(v, n, b));
  lse(n, b) = maxLogit(n, b) + log(sum(exp(logits(v, n, b) - maxLogit(n, b))));
  Expr target = targets(n, b);
  Expr valid = target != -100;
  Expr picked = logits(clamp(target, 0, logits.dim(0).extent() - 1), n, b);
  perPos(n, b) = select(valid, lse(n, b) - picked, 0.0f);
  RDom pos(0, logits.dim(1).extent(), 0, logits.dim(2).extent(), "pos");
  Func total("total"), count("count"), loss("loss");
  total() = sum(perPos(pos.x, pos.y));
  count() = sum(select(targets(pos.x, pos.y) != -100, 1.0f, 0.0f));
  loss() = total() / max(1.0f, count());
  maxLogit.compute_root();
  lse.compute_root();
  perPos.compute_root();
  loss.compile_to_object(object, {logits, targets}, "toy_k3_xent",
                         Target(std::string(kBaseTarget) + "-no_runtime"));
}

//===----------------------------------------------------------------------===//
// Weights and manifest
//===----------------------------------------------------------------------===//

Tensor filled(std::vector<int64_t> shape, float (*value)(int64_t)) {
  Tensor t = Tensor::zeros(DType::F32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    t.data<float>()[i] = value(i);
  }
  return t;
}

rt::BufferInfo buffer(std::vector<int64_t> shape, DType dtype,
                      rt::Storage storage, std::string param = "",
                      int64_t offset = 0) {
  rt::BufferInfo b;
  b.shape = std::move(shape);
  b.dtype = dtype;
  b.storage = storage;
  b.param = std::move(param);
  b.offset = offset;
  return b;
}

rt::CallInfo call(std::string kernel, std::vector<int64_t> buffers,
                  int64_t flops, int64_t bytes) {
  return {std::move(kernel), std::move(buffers), flops, bytes};
}

rt::Manifest makeManifest() {
  rt::Manifest m;
  absl::StatusOr<synth::json::Value> model = synth::json::parse(
      R"({"name": "toy", "task": "lm", "d_model": 16, "heads": 1,
          "layers": 1, "ffn": 16, "max_len": 8, "vocab": {"kind": "bytes"},
          "attention": {"kind": "dot"}})",
      "model");
  m.model = *model;
  m.target.kind = "cpu";
  m.target.arch = "x86-64";
  m.target.requiredFeatures = {"sse41"};
  m.target.variants = {kBaseTarget};
  m.parameters = {{"embed.weight", {kVocab, kDim}, DType::F32, true},
                  {"norm.weight", {kDim}, DType::F32, true},
                  {"lm_head.weight", {kDim, kVocab}, DType::F32, true}};
  const std::vector<int64_t> tokens = {kBatch, kSeq};
  const std::vector<int64_t> hidden = {kBatch, kSeq, kDim};
  const std::vector<int64_t> logits = {kBatch, kSeq, kVocab};
  const int64_t hiddenBytes = kBatch * kSeq * kDim * 4;
  const int64_t logitsBytes = kBatch * kSeq * kVocab * 4;
  const int64_t rows = kBatch * kSeq;

  rt::EntryInfo forward;
  forward.name = "forward";
  forward.inputs = {{"tokens", 0}};
  forward.outputs = {{"logits", 5}};
  forward.buffers = {
      buffer(tokens, DType::I32, rt::Storage::Input),
      buffer({kVocab, kDim}, DType::F32, rt::Storage::Param, "embed.weight"),
      buffer({kDim}, DType::F32, rt::Storage::Param, "norm.weight"),
      buffer(hidden, DType::F32, rt::Storage::Arena, "", 0),
      buffer({kDim, kVocab}, DType::F32, rt::Storage::Param, "lm_head.weight"),
      buffer(logits, DType::F32, rt::Storage::Output)};
  forward.arenaBytes = hiddenBytes;
  forward.calls = {call("toy_k0_embed_scale", {0, 1, 2, 3}, 2 * rows * kDim,
                        rows * 4 + rows * kDim * 4 * 2 + kDim * 4),
                   call("toy_k1_logits", {3, 4, 5}, 2 * rows * kDim * kVocab,
                        hiddenBytes + kDim * kVocab * 4 + logitsBytes)};

  rt::EntryInfo pool;
  pool.name = "pool";
  pool.inputs = {{"tokens", 0}, {"mask", 1}};
  pool.outputs = {{"pooled", 5}};
  pool.buffers = {
      buffer(tokens, DType::I32, rt::Storage::Input),
      buffer(tokens, DType::U8, rt::Storage::Input),
      buffer({kVocab, kDim}, DType::F32, rt::Storage::Param, "embed.weight"),
      buffer({kDim}, DType::F32, rt::Storage::Param, "norm.weight"),
      buffer(hidden, DType::F32, rt::Storage::Arena, "", 128),
      buffer({kBatch, kDim}, DType::F32, rt::Storage::Output)};
  pool.arenaBytes = 128 + hiddenBytes;
  pool.calls = {call("toy_k0_embed_scale", {0, 2, 3, 4}, 2 * rows * kDim,
                     rows * 4 + rows * kDim * 4 * 2 + kDim * 4),
                call("toy_k2_masked_mean", {4, 1, 5}, 2 * rows * kDim,
                     hiddenBytes + rows + kBatch * kDim * 4)};

  rt::EntryInfo loss;
  loss.name = "loss";
  loss.inputs = {{"tokens", 0}, {"targets", 1}};
  loss.outputs = {{"loss", 7}};
  loss.buffers = {
      buffer(tokens, DType::I32, rt::Storage::Input),
      buffer(tokens, DType::I32, rt::Storage::Input),
      buffer({kVocab, kDim}, DType::F32, rt::Storage::Param, "embed.weight"),
      buffer({kDim}, DType::F32, rt::Storage::Param, "norm.weight"),
      buffer(hidden, DType::F32, rt::Storage::Arena, "", 0),
      buffer({kDim, kVocab}, DType::F32, rt::Storage::Param, "lm_head.weight"),
      buffer(logits, DType::F32, rt::Storage::Arena, "", hiddenBytes),
      buffer({}, DType::F32, rt::Storage::Output)};
  loss.arenaBytes = hiddenBytes + logitsBytes;
  loss.calls = {forward.calls[0],
                call("toy_k1_logits", {4, 5, 6}, 2 * rows * kDim * kVocab,
                     hiddenBytes + kDim * kVocab * 4 + logitsBytes),
                call("toy_k3_xent", {6, 1, 7}, 4 * rows * kVocab,
                     logitsBytes + rows * 4 + 4)};
  loss.calls[0].buffers = {0, 2, 3, 4};

  m.entries = {forward, pool, loss};
  return m;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    return fail("usage: synth-make-test-artifact OUT_DIR CXX");
  }
  const std::string out = argv[1], cxx = argv[2];
  const std::string work = out + ".build";
  for (const std::string &dir : {out, work}) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail("cannot create " + dir);
    }
  }

  // Kernels -> objects -> kernels.so.
  const std::vector<std::pair<void (*)(const std::string &), std::string>>
      kernels = {{compileEmbedScale, "k0.o"},
                 {compileLogits, "k1.o"},
                 {compileMaskedMean, "k2.o"},
                 {compileCrossEntropy, "k3.o"}};
  std::string link = "'" + cxx + "' -shared -o '" + out + "/kernels.so'";
  for (const auto &[compile, name] : kernels) {
    compile(work + "/" + name);
    link += " '" + work + "/" + name + "'";
  }
  link += " -lpthread -ldl";
  if (std::system(link.c_str()) != 0) {
    return fail("link failed: " + link);
  }

  // Weights: small deterministic values with both signs.
  synth::safetensors::File weights;
  weights.add("embed.weight", filled({kVocab, kDim}, [](int64_t i) {
                return float((i * 7) % 17 - 8) / 8.0f;
              }));
  weights.add("norm.weight", filled({kDim}, [](int64_t i) {
                return 0.5f + float(i) / 16.0f;
              }));
  weights.add("lm_head.weight", filled({kDim, kVocab}, [](int64_t i) {
                return float((i * 5) % 13 - 6) / 16.0f;
              }));
  absl::Status status =
      synth::safetensors::write(out + "/weights.safetensors", weights);
  if (!status.ok()) {
    return fail(std::string(status.message()));
  }

  rt::Manifest manifest = makeManifest();
  for (const char *name : {"kernels.so", "weights.safetensors"}) {
    absl::StatusOr<std::string> bytes =
        synth::readFileBytes(out + "/" + std::string(name));
    if (!bytes.ok()) {
      return fail(std::string(bytes.status().message()));
    }
    manifest.files.push_back(
        {name, synth::sha256Hex(*bytes), static_cast<int64_t>(bytes->size())});
  }
  status = rt::validateManifest(manifest, "toy manifest");
  if (!status.ok()) {
    return fail(std::string(status.message()));
  }
  status = synth::writeFileAtomic(out + "/manifest.json",
                                  rt::serializeManifest(manifest));
  if (!status.ok()) {
    return fail(std::string(status.message()));
  }
  return 0;
}
