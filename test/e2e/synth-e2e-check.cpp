//===- synth-e2e-check.cpp - compiled artifact vs the reference -----------===//
//
//   synth-e2e-check ARTIFACT REF.safetensors [--rtol R] [--threads T]
//                   [--write-outputs OUT.safetensors] [--device cpu|cuda]
//
// REF is what test/reference's synth-reference writes: parameters under their
// own names, inputs as input.<name>, and the reference's float64 results
// ref.logits and ref.loss. The artifact runs `forward` and `loss` on exactly
// those weights and inputs (outputs poisoned with NaN first), and each result
// must match the reference within the relative error R (default 1e-5):
// max |compiled - ref| / max |ref|. NaN never passes. An artifact with a
// `gradients` entry (synthc --gradients) also has every trainable parameter's
// gradient compared with the reference's grad.<name> (relative error
// <= --grad-rtol, default 1e-4). With --write-outputs the file is rewritten
// with the compiled results in place of ref.* and grad.* (gradients dropped
// when the artifact has none), so the PyTorch cross-check can judge the
// compiled numbers too. --device cuda runs a
// `synthc --target=cuda` artifact on the GPU (test/gpu/run.sh).
//
//===----------------------------------------------------------------------===//

#include "runtime/Artifact.h"
#include "runtime/CudaDevice.h"
#include "runtime/Executor.h"
#include "runtime/Safetensors.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <string>

namespace {

int usage(const char *message) {
  std::fprintf(stderr,
               "synth-e2e-check: %s\nusage: synth-e2e-check ARTIFACT "
               "REF.safetensors [--rtol R] [--threads T] [--write-outputs "
               "OUT.safetensors] [--device cpu|cuda]\n",
               message);
  return 2;
}

/// Relative error of a float32 result against a float64 reference; NaN or
/// Inf anywhere gives +inf.
double relativeError(const synth::Tensor &got, const synth::Tensor &want) {
  if (got.numel() != want.numel()) {
    return INFINITY;
  }
  const float *g = got.data<float>();
  const double *w = want.data<double>();
  double maxDiff = 0, maxRef = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (!std::isfinite(g[i]) || !std::isfinite(w[i])) {
      return INFINITY;
    }
    maxDiff = std::max(maxDiff, std::fabs(double(g[i]) - w[i]));
    maxRef = std::max(maxRef, std::fabs(w[i]));
  }
  return maxDiff / std::max(maxRef, 1e-30);
}

/// One entry's session on the CPU or a CUDA device, behind one interface.
struct AnySession {
  std::unique_ptr<synth::rt::Session> cpu;
  std::unique_ptr<synth::rt::CudaSession> cuda;
  const synth::rt::EntryInfo &entry() const {
    return cpu ? cpu->entry() : cuda->entry();
  }
  absl::Status setInput(const std::string &name, const synth::Tensor &value) {
    return cpu ? cpu->setInput(name, value) : cuda->setInput(name, value);
  }
  absl::Status run(const synth::rt::RunOptions &options) {
    return cpu ? cpu->run(options) : cuda->run(options);
  }
  absl::StatusOr<synth::Tensor> output(const std::string &name) const {
    return cpu ? cpu->output(name) : cuda->output(name);
  }
};

} // namespace

int main(int argc, char **argv) {
  if (argc < 3) {
    return usage("needs an artifact and a reference file");
  }
  std::string artifactPath = argv[1], refPath = argv[2], writePath;
  double rtol = 1e-5;
  double gradRtol = 1e-4;
  int threads = 0;
  bool onCuda = false;
  for (int i = 3; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--grad-rtol" && i + 1 < argc) {
      gradRtol = std::atof(argv[++i]);
      continue;
    }
    if (arg == "--rtol" && i + 1 < argc) {
      rtol = std::atof(argv[++i]);
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (arg == "--write-outputs" && i + 1 < argc) {
      writePath = argv[++i];
    } else if (arg == "--device" && i + 1 < argc) {
      std::string device = argv[++i];
      if (device != "cpu" && device != "cuda") {
        return usage("--device expects cpu or cuda");
      }
      onCuda = device == "cuda";
    } else {
      return usage(("unknown argument " + arg).c_str());
    }
  }
  auto artifact = synth::rt::Artifact::load(
      artifactPath,
      onCuda ? synth::rt::DeviceKind::Cuda : synth::rt::DeviceKind::Cpu);
  if (!artifact.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(artifact.status().message()).c_str());
    return 1;
  }
  if (threads > 0 && !onCuda) {
    (void)(*artifact)->setNumThreads(threads);
  }
  std::shared_ptr<synth::safetensors::File> weightsHolder;
  std::unique_ptr<synth::rt::CudaDevice> device;
  if (onCuda) {
    auto opened = synth::rt::CudaDevice::open();
    if (!opened.ok()) {
      std::fprintf(stderr, "error: %s\n",
                   std::string(opened.status().message()).c_str());
      return 1;
    }
    device = std::move(*opened);
  }
  // A session for `entry` on the chosen device.
  auto makeSession = [&](const std::string &entry)
      -> absl::StatusOr<std::unique_ptr<AnySession>> {
    auto any = std::make_unique<AnySession>();
    if (onCuda) {
      auto s = synth::rt::CudaSession::create(*device, **artifact, entry,
                                              weightsHolder);
      if (!s.ok()) {
        return s.status();
      }
      any->cuda = std::move(*s);
    } else {
      auto s = synth::rt::Session::create(**artifact, entry, weightsHolder);
      if (!s.ok()) {
        return s.status();
      }
      any->cpu = std::move(*s);
    }
    return any;
  };
  auto ref = synth::safetensors::read(refPath);
  if (!ref.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(ref.status().message()).c_str());
    return 1;
  }
  // The parameters of the model, from the reference file.
  weightsHolder = std::make_shared<synth::safetensors::File>();
  auto &weights = weightsHolder;
  for (const auto &param : (*artifact)->manifest().parameters) {
    const synth::Tensor *t = ref->find(param.name);
    if (!t) {
      std::fprintf(stderr, "error: %s has no parameter %s\n", refPath.c_str(),
                   param.name.c_str());
      return 1;
    }
    weights->add(param.name, *t);
  }

  bool ok = true;
  synth::safetensors::File written = *ref;
  struct Check {
    const char *entry, *output, *refName;
  };
  for (Check check : {Check{"forward", "logits", "ref.logits"},
                      Check{"loss", "loss", "ref.loss"}}) {
    auto session = synth::rt::Session::create(**artifact, check.entry, weights);
    if (!session.ok()) {
      std::fprintf(stderr, "error: %s\n",
                   std::string(session.status().message()).c_str());
      return 1;
    }
    for (const auto &input : (*session)->entry().inputs) {
      const synth::Tensor *t = ref->find("input." + input.name);
      if (!t) {
        std::fprintf(stderr, "error: %s has no input.%s\n", refPath.c_str(),
                     input.name.c_str());
        return 1;
      }
      if (absl::Status s = (*session)->setInput(input.name, *t); !s.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
    synth::rt::RunOptions options;
    options.poisonOutputs = true;
    options.poisonArena = true;
    if (absl::Status s = (*session)->run(options); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    auto got = (*session)->output(check.output);
    // A second run skips the plan's once calls (values derived from the
    // parameters alone, e.g. fixed random attention weights) and must give
    // the same result, bit for bit.
    if (absl::Status s = (*session)->run(options); !s.ok()) {
      std::fprintf(stderr, "error: second run: %s\n",
                   std::string(s.message()).c_str());
      return 1;
    }
    auto again = (*session)->output(check.output);
    if (!got.ok() || !again.ok() || got->bytes != again->bytes) {
      std::fprintf(stderr, "error: %s: a second run gave different %s\n",
                   check.entry, check.output);
      return 1;
    }
    const synth::Tensor *want = ref->find(check.refName);
    if (!got.ok() || !want) {
      std::fprintf(stderr, "error: missing %s\n", check.refName);
      return 1;
    }
    double err = relativeError(*got, *want);
    bool pass = err <= rtol;
    ok &= pass;
    std::printf("%-8s %-7s rel err %.3g (tolerance %.0e) %s\n", check.entry,
                check.output, err, rtol, pass ? "ok" : "FAIL");
    if (!writePath.empty()) {
      synth::Tensor asDouble =
          synth::Tensor::zeros(synth::DType::F64, got->shape);
      for (int64_t i = 0; i < got->numel(); ++i) {
        asDouble.data<double>()[i] = got->data<float>()[i];
      }
      *written.find(check.refName) = asDouble;
    }
  }
  // Decoding with the cache (lm artifacts have a "decode" entry): feed the
  // tokens one at a time, carrying the caches from output to input; step t's
  // logits must be row t of the reference's logits.
  if ((*artifact)->manifest().findEntry("decode")) {
    auto session = makeSession("decode");
    const synth::Tensor *tokens = ref->find("input.tokens");
    const synth::Tensor *want = ref->find("ref.logits");
    if (!session.ok() || !tokens || !want) {
      std::fprintf(stderr, "error: decode: %s\n",
                   session.ok()
                       ? "missing input.tokens or ref.logits"
                       : std::string(session.status().message()).c_str());
      return 1;
    }
    int64_t batch = tokens->shape[0], steps = tokens->shape[1];
    int64_t vocab = want->shape[2];
    const synth::rt::EntryInfo &entry = (*session)->entry();
    std::vector<std::string> caches;
    for (const auto &input : entry.inputs) {
      if (input.name.rfind("cache.", 0) == 0) {
        caches.push_back(input.name);
        const auto &buffer = entry.buffers[input.buffer];
        (void)(*session)->setInput(
            input.name, synth::Tensor::zeros(buffer.dtype, buffer.shape));
      }
    }
    synth::Tensor got = synth::Tensor::zeros(synth::DType::F32, want->shape);
    for (int64_t t = 0; t < steps; ++t) {
      synth::Tensor token = synth::Tensor::zeros(synth::DType::I32, {batch, 1});
      for (int64_t b = 0; b < batch; ++b) {
        token.data<int32_t>()[b] = tokens->data<int32_t>()[b * steps + t];
      }
      synth::Tensor position = synth::Tensor::zeros(synth::DType::I32, {});
      position.data<int32_t>()[0] = static_cast<int32_t>(t);
      absl::Status status = (*session)->setInput("token", token);
      if (status.ok()) {
        status = (*session)->setInput("position", position);
      }
      if (status.ok()) {
        synth::rt::RunOptions options;
        options.poisonOutputs = true;
        status = (*session)->run(options);
      }
      for (size_t c = 0; status.ok() && c < caches.size(); ++c) {
        auto next = (*session)->output(caches[c]);
        status =
            next.ok() ? (*session)->setInput(caches[c], *next) : next.status();
      }
      auto logits = (*session)->output("logits");
      if (!status.ok() || !logits.ok()) {
        std::fprintf(
            stderr, "error: decode step %lld: %s\n", (long long)t,
            std::string((status.ok() ? logits.status() : status).message())
                .c_str());
        return 1;
      }
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t v = 0; v < vocab; ++v) {
          got.data<float>()[(b * steps + t) * vocab + v] =
              logits->data<float>()[b * vocab + v];
        }
      }
    }
    double err = relativeError(got, *want);
    bool pass = err <= rtol;
    ok &= pass;
    std::printf("%-8s %-7s rel err %.3g (tolerance %.0e) %s (%lld steps, "
                "caches: %zu)\n",
                "decode", "logits", err, rtol, pass ? "ok" : "FAIL",
                (long long)steps, caches.size());
  }

  // Gradients (artifacts built with --gradients): every trainable
  // parameter's, against the reference's float64 backward pass.
  bool haveGradients =
      (*artifact)->manifest().findEntry("gradients") != nullptr;
  if (haveGradients && !onCuda) {
    auto session = synth::rt::Session::create(**artifact, "gradients", weights);
    if (!session.ok()) {
      std::fprintf(stderr, "error: %s\n",
                   std::string(session.status().message()).c_str());
      return 1;
    }
    for (const auto &input : (*session)->entry().inputs) {
      const synth::Tensor *t = ref->find("input." + input.name);
      absl::Status s =
          t ? (*session)->setInput(input.name, *t)
            : absl::NotFoundError("no input." + input.name + " in " + refPath);
      if (!s.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
    synth::rt::RunOptions options;
    options.poisonOutputs = true;
    options.poisonArena = true;
    if (absl::Status s = (*session)->run(options); !s.ok()) {
      std::fprintf(stderr, "error: gradients: %s\n",
                   std::string(s.message()).c_str());
      return 1;
    }
    double worst = 0.0;
    std::string worstName;
    int count = 0;
    for (const auto &output : (*session)->entry().outputs) {
      if (output.name.rfind("grad.", 0) != 0) {
        continue;
      }
      auto got = (*session)->output(output.name);
      const synth::Tensor *want = ref->find(output.name);
      if (!got.ok() || !want) {
        std::fprintf(stderr, "error: %s is missing from %s\n",
                     output.name.c_str(),
                     want ? "the artifact" : "the reference");
        return 1;
      }
      double err = relativeError(*got, *want);
      bool pass = err <= gradRtol;
      ok &= pass;
      ++count;
      if (!pass || std::isnan(err)) {
        std::printf("gradients %-40s rel err %.3g (tolerance %.0e) FAIL\n",
                    output.name.c_str(), err, gradRtol);
      }
      if (!(err <= worst)) {
        worst = err;
        worstName = output.name;
      }
      synth::Tensor asDouble =
          synth::Tensor::zeros(synth::DType::F64, got->shape);
      for (int64_t i = 0; i < got->numel(); ++i) {
        asDouble.data<double>()[i] = got->data<float>()[i];
      }
      *written.find(output.name) = asDouble;
    }
    // Every trainable parameter of the reference must have been compared.
    int expected = 0;
    for (const auto &param : (*artifact)->manifest().parameters) {
      expected += param.trainable ? 1 : 0;
    }
    if (count != expected) {
      std::printf("gradients: %d compared, %d trainable parameters FAIL\n",
                  count, expected);
      ok = false;
    }
    std::printf("gradients %d tensors, max rel err %.3g (%s) (tolerance "
                "%.0e) %s\n",
                count, worst, worstName.c_str(), gradRtol,
                worst <= gradRtol && count == expected ? "ok" : "FAIL");
  }

  if (!writePath.empty()) {
    // Without a gradients entry, drop the reference's gradients so nobody
    // mistakes them for compiled ones.
    synth::safetensors::File out;
    for (auto &[name, tensor] : written.tensors) {
      if (haveGradients || name.rfind("grad.", 0) != 0) {
        out.add(name, tensor);
      }
    }
    if (absl::Status s = synth::safetensors::write(writePath, out); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
