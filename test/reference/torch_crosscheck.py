#!/usr/bin/env python3
"""Cross-checks the C++ reference implementation (synth-reference) against PyTorch.

Usage: torch_crosscheck.py [--forward-only] MODEL.json RUN.safetensors [RUN.safetensors ...]

Each RUN file is written by synth-reference: the model's parameters under their documented names, the
inputs (`input.*`) and the reference's float64 outputs (`ref.logits`, `ref.loss`, `grad.<parameter>`).
This script rebuilds the model from MODEL.json in PyTorch, written from docs/model-format.md alone
(float32, plain tensor ops, autograd for the gradients), runs it on the same weights and inputs, and
compares, per tensor,

    relative error = max|torch - ref| / max(max|ref|, 1e-30)

which must be at most 1e-5 for the logits and the loss and at most 1e-4 for every gradient. A NaN or
Inf on either side, a gradient present on one side only, or parameters whose names, order or shapes
differ from the documented table fail too. It prints one line per group of compared quantities and a
final PASS or FAIL.

float32 cannot resolve a few quantities on rare draws (a ReLU input within float32 rounding of zero flips
its derivative; a mixture-logit gradient is the difference of two nearly equal sums). So when a finite
float32 result misses its tolerance, the file is recomputed in float64: if everything then agrees with
the reference to 1e-9, the float32 excess is printed as "warn" and does not fail the run; otherwise it
fails. In a soak of 13,000 files (1,000 per test model) this happened 4 times, never failing.

With --forward-only the files hold float32 results of compiled code (test/e2e writes them as `ref.*`, without
gradients): only logits and loss are compared (tolerance 1e-5), and the float64 recheck compares the compiled
numbers with PyTorch in float64, the exact answer, at the same 1e-5.

Exit status: 0 pass, 1 fail, 2 bad usage, 77 when PyTorch is not installed (ctest's SKIP_RETURN_CODE).
"""

import json
import math
import re
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as error:  # Debian's python3-torch brings numpy along
    print(f"SKIP: python3-torch not installed ({error}; apt-get install python3-torch)")
    sys.exit(77)

LOGITS_TOLERANCE = 1e-5
LOSS_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-4
# Torch in float64 against the float64 reference, used only to explain a float32 excess (see check_run).
FLOAT64_TOLERANCE = 1e-9
IGNORE_TARGET = -100


# ----------------------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, then the data region
# ----------------------------------------------------------------------------------------------------------

NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1",
                "BOOL": "?"}


def read_safetensors(path):
    """Returns ({name: numpy array}, [names in file order], {metadata})."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    body = data[8 + header_len:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = np.dtype(NUMPY_DTYPES[info["dtype"]])
        shape = tuple(info["shape"])
        if end - begin != dtype.itemsize * math.prod(shape) or end > len(body):
            raise ValueError(f"{path}: tensor {name}: offsets do not match dtype and shape")
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).copy()
    order = sorted(header, key=lambda n: header[n]["data_offsets"][0])
    return tensors, order, metadata


# ----------------------------------------------------------------------------------------------------------
# The model description (docs/model-format.md), with its defaults
# ----------------------------------------------------------------------------------------------------------

def normalize_attention(spec, head_dim):
    """Fills in the documented defaults of one attention spec."""
    kind = spec["kind"]
    out = {"kind": kind}
    if kind in ("dense", "factorized_dense"):
        out["hidden"] = spec.get("hidden", head_dim)
    if kind == "factorized_dense":
        out["a"], out["b"] = spec["a"], spec["b"]
    if kind == "random":
        out["trainable"] = spec.get("trainable", True)
    if kind == "factorized_random":
        out["rank"] = spec.get("rank", 8)
    if kind == "mixture":
        out["parts"] = [normalize_attention(part, head_dim) for part in spec["parts"]]
    return out


class Config:
    """The fields of a model description that the math needs."""

    def __init__(self, desc):
        self.task = desc["task"]
        self.d_model = desc["d_model"]
        self.heads = desc["heads"]
        self.head_dim = self.d_model // self.heads
        self.ffn = desc["ffn"]
        self.max_len = desc["max_len"]
        vocab = desc["vocab"]
        self.vocab = 256 if vocab["kind"] == "bytes" else vocab["size"]
        self.pre_norm = desc.get("norm", "pre") == "pre"
        self.activation = desc.get("activation", "relu")
        self.tied = desc.get("tie_embeddings", False)
        self.eps = desc.get("layer_norm_epsilon", 1e-5)
        self.num_classes = desc.get("num_classes")
        default = normalize_attention(desc["attention"], self.head_dim)
        if self.task == "seq2seq":
            self.encoder = [default] * desc["encoder_layers"]
            self.decoder = [default] * desc["decoder_layers"]
        elif self.task == "lm":
            self.encoder, self.decoder = [], [default] * desc["layers"]
        else:
            self.encoder, self.decoder = [default] * desc["layers"], []
        for override in desc.get("attention_overrides", []):
            spec = normalize_attention(override["attention"], self.head_dim)
            if self.task == "seq2seq":
                stack = self.encoder if override["stack"] == "encoder" else self.decoder
            else:
                stack = self.decoder if self.task == "lm" else self.encoder
            for i in override["layers"]:
                stack[i] = spec


def parameter_table(cfg):
    """[(name, shape, trainable)] in the documented order."""
    D, H, L, F, V = cfg.d_model, cfg.heads, cfg.max_len, cfg.ffn, cfg.vocab
    table = []

    def add(name, shape, trainable=True):
        table.append((name, tuple(shape), trainable))

    def norm(prefix):
        add(prefix + ".weight", [D])
        add(prefix + ".bias", [D])

    def score_params(attn, spec):
        kind = spec["kind"]
        if kind == "dot":
            add(attn + ".dot.q.weight", [D, D])
            add(attn + ".dot.k.weight", [D, D])
        elif kind == "dense":
            k = spec["hidden"]
            for name, shape in (("w1", [H, D, k]), ("b1", [H, k]), ("w2", [H, k, L]), ("b2", [H, L])):
                add(attn + ".dense." + name, shape)
        elif kind == "random":
            add(attn + ".random.R", [H, L, L], spec["trainable"])
        elif kind == "factorized_random":
            add(attn + ".factorized_random.R1", [H, L, spec["rank"]])
            add(attn + ".factorized_random.R2", [H, L, spec["rank"]])
        elif kind == "factorized_dense":
            k, a, b = spec["hidden"], spec["a"], spec["b"]
            for name, shape in (("w1", [H, D, k]), ("b1", [H, k]), ("wa", [H, k, a]), ("ba", [H, a]),
                                ("wb", [H, k, b]), ("bb", [H, b])):
                add(attn + ".factorized_dense." + name, shape)

    def stack(prefix, specs, cross):
        for i, spec in enumerate(specs):
            layer = f"{prefix}layers.{i}."
            norm(layer + "attn_norm")
            if spec["kind"] == "mixture":
                add(layer + "attn.mixture.logits", [H, len(spec["parts"])])
                for part in spec["parts"]:
                    score_params(layer + "attn", part)
            else:
                score_params(layer + "attn", spec)
            add(layer + "attn.v.weight", [D, D])
            add(layer + "attn.o.weight", [D, D])
            if cross:
                norm(layer + "cross_norm")
                for w in "qkvo":
                    add(f"{layer}cross_attn.{w}.weight", [D, D])
            norm(layer + "ffn_norm")
            add(layer + "ffn.w1.weight", [D, F])
            add(layer + "ffn.w1.bias", [F])
            add(layer + "ffn.w2.weight", [F, D])
            add(layer + "ffn.w2.bias", [D])
        if cfg.pre_norm:
            norm(prefix + "final_norm")

    add("embed.weight", [V, D])
    add("pos.weight", [L, D])
    if cfg.task == "lm":
        stack("", cfg.decoder, False)
    elif cfg.task == "encoder":
        stack("", cfg.encoder, False)
        add("classifier.weight", [D, cfg.num_classes])
        add("classifier.bias", [cfg.num_classes])
    else:
        stack("encoder.", cfg.encoder, False)
        stack("decoder.", cfg.decoder, True)
    if cfg.task != "encoder" and not cfg.tied:
        add("lm_head.weight", [D, V])
    return table


# ----------------------------------------------------------------------------------------------------------
# The model in PyTorch
# ----------------------------------------------------------------------------------------------------------

class TorchModel:
    """The computation of docs/model-format.md on [batch, sequence, feature] float32 tensors."""

    def __init__(self, cfg, table, weights, dtype=torch.float32):
        self.cfg = cfg
        self.p = {}
        for name, _, trainable in table:
            self.p[name] = torch.tensor(weights[name], dtype=dtype, requires_grad=trainable)

    # --- building blocks ---

    def layer_norm(self, x, prefix):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased
        return (x - mean) / torch.sqrt(var + self.cfg.eps) * self.p[prefix + ".weight"] + self.p[prefix + ".bias"]

    def embed(self, tokens):
        n = tokens.shape[1]
        return self.p["embed.weight"][tokens] + self.p["pos.weight"][:n]

    def split_heads(self, x):
        """[B, N, D] -> [B, H, N, d]."""
        b, n, _ = x.shape
        return x.view(b, n, self.cfg.heads, self.cfg.head_dim).transpose(1, 2)

    def dot_scores(self, xq, xk, wq, wk):
        q = self.split_heads(xq @ wq)
        k = self.split_heads(xk @ wk)
        return q @ k.transpose(-1, -2) / math.sqrt(self.cfg.head_dim)

    def head_hidden(self, x, w1, b1):
        """relu(x W1_h + b1_h) for every head: [B, H, N, k]."""
        return torch.relu(torch.einsum("bnd,hdk->bhnk", x, w1) + b1[None, :, None, :])

    def scores(self, spec, attn, x):
        """S_h(x) of one self-attention layer, [B, H, N, N]."""
        b, n, _ = x.shape
        p = self.p
        kind = spec["kind"]
        if kind == "dot":
            return self.dot_scores(x, x, p[attn + ".dot.q.weight"], p[attn + ".dot.k.weight"])
        if kind == "dense":
            hidden = self.head_hidden(x, p[attn + ".dense.w1"], p[attn + ".dense.b1"])
            w2, b2 = p[attn + ".dense.w2"][:, :, :n], p[attn + ".dense.b2"][:, :n]
            return torch.einsum("bhnk,hkm->bhnm", hidden, w2) + b2[None, :, None, :]
        if kind == "random":
            return p[attn + ".random.R"][:, :n, :n].unsqueeze(0).expand(b, -1, -1, -1)
        if kind == "factorized_random":
            r1 = p[attn + ".factorized_random.R1"][:, :n]
            r2 = p[attn + ".factorized_random.R2"][:, :n]
            return (r1 @ r2.transpose(-1, -2)).unsqueeze(0).expand(b, -1, -1, -1)
        if kind == "factorized_dense":
            f = attn + ".factorized_dense"
            hidden = self.head_hidden(x, p[f + ".w1"], p[f + ".b1"])
            a = torch.einsum("bhnk,hka->bhna", hidden, p[f + ".wa"]) + p[f + ".ba"][None, :, None, :]
            bb = torch.einsum("bhnk,hkc->bhnc", hidden, p[f + ".wb"]) + p[f + ".bb"][None, :, None, :]
            outer = a.unsqueeze(-1) * bb.unsqueeze(-2)  # [B, H, N, a, b]: index p*b + q once flattened
            return outer.reshape(b, self.cfg.heads, n, spec["a"] * spec["b"])[..., :n]
        if kind == "mixture":
            alpha = torch.softmax(p[attn + ".mixture.logits"], dim=-1)  # [H, m]
            total = 0
            for m, part in enumerate(spec["parts"]):
                total = total + alpha[:, m].view(1, -1, 1, 1) * self.scores(part, attn, x)
            return total
        raise ValueError(f"unknown attention kind {kind}")

    def attend(self, scores, visible, values, wo):
        """concat_h(softmax(S_h + M) V_h) Wo; `visible` broadcasts to [B, H, Nq, Nk]."""
        b, h, nq, nk = scores.shape
        visible = visible.expand(b, h, nq, nk)
        any_visible = visible.any(-1, keepdim=True)
        # A query with no visible key outputs zeros: softmax over a row of zeros, then multiplied by 0.
        s = scores.masked_fill(~visible, float("-inf")).masked_fill(~any_visible, 0.0)
        probs = torch.softmax(s, dim=-1) * any_visible
        context = probs @ self.split_heads(values)
        return context.transpose(1, 2).reshape(b, nq, self.cfg.d_model) @ wo

    def self_attention(self, spec, attn, x, visible):
        s = self.scores(spec, attn, x)
        return self.attend(s, visible, x @ self.p[attn + ".v.weight"], self.p[attn + ".o.weight"])

    def cross_attention(self, cross, x, enc, visible):
        p = self.p
        s = self.dot_scores(x, enc, p[cross + ".q.weight"], p[cross + ".k.weight"])
        return self.attend(s, visible, enc @ p[cross + ".v.weight"], p[cross + ".o.weight"])

    def feed_forward(self, ffn, x):
        p = self.p
        pre = x @ p[ffn + ".w1.weight"] + p[ffn + ".w1.bias"]
        if self.cfg.activation == "relu":
            act = torch.relu(pre)
        else:
            act = 0.5 * pre * (1.0 + torch.erf(pre / math.sqrt(2.0)))
        return act @ p[ffn + ".w2.weight"] + p[ffn + ".w2.bias"]

    def residual(self, norm, x, sublayer):
        if self.cfg.pre_norm:
            return x + sublayer(self.layer_norm(x, norm))
        return self.layer_norm(x + sublayer(x), norm)

    def stack(self, prefix, specs, x, visible, enc=None, enc_visible=None):
        for i, spec in enumerate(specs):
            layer = f"{prefix}layers.{i}."
            x = self.residual(layer + "attn_norm", x,
                              lambda h: self.self_attention(spec, layer + "attn", h, visible))
            if enc is not None:
                x = self.residual(layer + "cross_norm", x,
                                  lambda h: self.cross_attention(layer + "cross_attn", h, enc, enc_visible))
            x = self.residual(layer + "ffn_norm", x, lambda h: self.feed_forward(layer + "ffn", h))
        if self.cfg.pre_norm:
            x = self.layer_norm(x, prefix + "final_norm")
        return x

    def lm_head(self, x):
        if self.cfg.tied:
            return x @ self.p["embed.weight"].t()
        return x @ self.p["lm_head.weight"]

    # --- whole models ---

    def run(self, inputs):
        """Returns (logits, loss) for the task's inputs."""
        task = self.cfg.task
        if task == "lm":
            tokens = inputs["input.tokens"]
            n = tokens.shape[1]
            causal = torch.ones(n, n, dtype=torch.bool).tril()[None, None]
            logits = self.lm_head(self.stack("", self.cfg.decoder, self.embed(tokens), causal))
            return logits, cross_entropy(logits, inputs["input.targets"])
        if task == "encoder":
            tokens, mask = inputs["input.tokens"], inputs["input.mask"].bool()
            x = self.stack("", self.cfg.encoder, self.embed(tokens), mask[:, None, None, :])
            weights = mask.to(x.dtype).unsqueeze(-1)
            pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            logits = pooled @ self.p["classifier.weight"] + self.p["classifier.bias"]
            return logits, cross_entropy(logits, inputs["input.labels"])
        source, source_mask = inputs["input.source"], inputs["input.source_mask"].bool()
        target_in = inputs["input.target_in"]
        t = target_in.shape[1]
        source_visible = source_mask[:, None, None, :]
        enc = self.stack("encoder.", self.cfg.encoder, self.embed(source), source_visible)
        causal = torch.ones(t, t, dtype=torch.bool).tril()[None, None]
        dec = self.stack("decoder.", self.cfg.decoder, self.embed(target_in), causal, enc, source_visible)
        logits = self.lm_head(dec)
        return logits, cross_entropy(logits, inputs["input.target_out"])


def cross_entropy(logits, targets):
    """Mean over targets other than -100 of -log softmax(logits)[target]; 0 when all are ignored."""
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    counted = targets != IGNORE_TARGET
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
    return -(picked * counted).sum() / counted.sum().clamp(min=1)


# ----------------------------------------------------------------------------------------------------------
# Comparison
# ----------------------------------------------------------------------------------------------------------

TASK_INPUTS = {
    "lm": ["input.tokens", "input.targets"],
    "encoder": ["input.tokens", "input.mask", "input.labels"],
    "seq2seq": ["input.source", "input.source_mask", "input.target_in", "input.target_out"],
}


def relative_error(actual, expected):
    """max|actual - expected| / max(max|expected|, 1e-30); inf for non-finite values or a shape mismatch."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape or not np.isfinite(actual).all() or not np.isfinite(expected).all():
        return math.inf
    if expected.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))), 1e-30))


def group_name(name):
    """Parameters of the same kind in different layers share a line: layers.3.attn -> layers.*.attn."""
    return re.sub(r"layers\.\d+\.", "layers.*.", name)


def run_torch(cfg, table, tensors, dtype):
    """Logits, loss and {parameter: gradient} (zeros for a trainable parameter autograd did not reach)."""
    inputs = {n: torch.from_numpy(tensors[n].astype(np.int64)) for n in TASK_INPUTS[cfg.task]}
    model = TorchModel(cfg, table, tensors, dtype)
    logits, loss = model.run(inputs)
    loss.backward()
    grads = {}
    for name, _, trainable in table:
        if trainable:
            grad = model.p[name].grad
            grads[name] = np.zeros(model.p[name].shape) if grad is None else grad.numpy()
    return logits.detach().numpy(), loss.detach().numpy(), grads


class Group:
    """One printed line: a group of tensors compared with one tolerance."""

    def __init__(self, label, pairs, tolerance):
        self.label, self.count, self.tolerance = label, len(pairs), tolerance
        self.worst, self.worst_name = -1.0, None
        for name, actual, expected in pairs:
            err = relative_error(actual, expected)
            if err > self.worst:
                self.worst, self.worst_name = err, name

    @property
    def finite(self):
        return math.isfinite(self.worst)

    @property
    def ok(self):
        return self.worst <= self.tolerance


FORWARD_ONLY = False


def compare(logits, loss, grads, tensors, table, tolerances):
    """Groups for logits, loss and each kind of gradient; tolerances = (logits/loss, gradients)."""
    groups = [Group("logits", [("ref.logits", logits, tensors["ref.logits"])], tolerances[0]),
              Group("loss", [("ref.loss", loss, tensors["ref.loss"])], tolerances[0])]
    if FORWARD_ONLY:
        return groups
    by_kind = {}
    for name, _, trainable in table:
        if trainable:
            by_kind.setdefault(group_name(name), []).append((name, grads[name], tensors["grad." + name]))
    groups += [Group("grad " + kind, pairs, tolerances[1]) for kind, pairs in by_kind.items()]
    return groups


class Report:
    def __init__(self):
        self.failed = False
        self.warnings = 0

    def line(self, status, text):
        """status: "ok", "warn" (float32 excess that the float64 recheck explains) or "FAIL"."""
        print(f"  {status:<4} {text}")
        self.failed |= status == "FAIL"
        self.warnings += status == "warn"


def check_run(cfg, table, path, report):
    """Compares one synth-reference output file; returns {group label: float32 relative error}."""
    tensors, order, metadata = read_safetensors(path)
    print(f"{path}: seed {metadata.get('seed', '?')}, perturb {metadata.get('perturb', '?')}")

    # The parameters must be exactly the documented table, in its order, float32.
    param_names = [n for n in order if not n.startswith(("input.", "ref.", "grad."))]
    expected_names = [name for name, _, _ in table]
    bad_shapes = [name for name, shape, _ in table
                  if name in tensors and (tensors[name].shape != shape or tensors[name].dtype != np.float32)]
    names_ok = param_names == expected_names and not bad_shapes
    detail = ""
    if not names_ok:
        missing = sorted(set(expected_names) - set(param_names))
        extra = sorted(set(param_names) - set(expected_names))
        detail = f": missing {missing}, unexpected {extra}, wrong shape/dtype {bad_shapes}, or order differs"
    report.line("ok" if names_ok else "FAIL",
                f"parameter names, order, shapes ({len(expected_names)} tensors){detail}")

    missing = [n for n in TASK_INPUTS[cfg.task] + ["ref.logits", "ref.loss"] if n not in tensors]
    report.line("FAIL" if missing else "ok", f"inputs and reference outputs present"
                + (f": missing {missing}" if missing else ""))

    # Gradients: every trainable parameter on both sides, nothing else on either.
    trainable = {name for name, _, t in table if t}
    in_file = {n[len("grad."):] for n in tensors if n.startswith("grad.")}
    only_torch, only_ref = sorted(trainable - in_file), sorted(in_file - trainable)
    if FORWARD_ONLY:
        only_torch, only_ref = [], sorted(in_file)
    report.line("FAIL" if only_torch or only_ref else "ok",
                "no gradients (forward only)" if FORWARD_ONLY else f"gradient sets ({len(trainable)} trainable)"
                + (f": only in torch {only_torch}" if only_torch else "")
                + (f": only in the reference {only_ref}" if only_ref else ""))
    if not names_ok or missing or only_torch or only_ref:
        return {}

    groups = compare(*run_torch(cfg, table, tensors, torch.float32), tensors, table,
                     (LOGITS_TOLERANCE, GRADIENT_TOLERANCE))
    # float32 cannot resolve everything: a ReLU input within float32 rounding of 0 flips its derivative, and a
    # mixture-logit gradient is a difference of nearly equal sums. When a finite float32 value misses its
    # tolerance, the same model is rerun in float64; if that agrees with the reference to FLOAT64_TOLERANCE
    # the excess was float32 rounding (reported as "warn"), otherwise it is a real difference (FAIL).
    explained = False
    excess = [g for g in groups if not g.ok]
    if excess and all(g.finite for g in groups):
        recheck = LOGITS_TOLERANCE if FORWARD_ONLY else FLOAT64_TOLERANCE
        groups64 = compare(*run_torch(cfg, table, tensors, torch.float64), tensors, table,
                           (recheck, recheck))
        worst64 = max(g.worst for g in groups64)
        explained = all(g.ok for g in groups64)
    for g in groups:
        status = "ok" if g.ok else ("warn" if explained else "FAIL")
        where = f" ({g.worst_name})" if g.count > 1 else ""
        report.line(status, f"{g.label:<48} {g.count:2d} tensor{'s' if g.count > 1 else ' '}  "
                            f"max rel err {g.worst:.2e}{where}  (tol {g.tolerance:.0e})")
    if excess and all(g.finite for g in groups):
        report.line("ok" if explained else "FAIL",
                    f"float64 recheck of {len(excess)} group(s) over tolerance: torch float64 vs reference "
                    f"max rel err {worst64:.2e} over everything (tol {recheck:.0e})"
                    + (": the float32 excess is rounding, not a difference in the math" if explained else ""))
    return {g.label: g.worst for g in groups}


def main(argv):
    global FORWARD_ONLY
    if len(argv) > 1 and argv[1] == "--forward-only":
        FORWARD_ONLY = True
        argv = argv[:1] + argv[2:]
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        cfg = Config(json.load(f))
    table = parameter_table(cfg)
    report = Report()
    overall = {}
    print(f"torch_crosscheck: {argv[1]} ({cfg.task}), torch {torch.__version__}, float32 vs float64 reference")
    for path in argv[2:]:
        try:
            for label, err in check_run(cfg, table, path, report).items():
                overall[label] = max(overall.get(label, 0.0), err)
        except (OSError, ValueError, KeyError) as error:
            report.line("FAIL", f"{path}: {error!r}")
    if overall:
        logits = max(overall.get("logits", 0.0), overall.get("loss", 0.0))
        grads = max((e for label, e in overall.items() if label.startswith("grad ")), default=0.0)
        print(f"summary: float32 max rel err logits/loss {logits:.2e}, gradients {grads:.2e}")
    if report.failed:
        print("FAIL")
        return 1
    print("PASS" + (f" ({report.warnings} float32 warning(s), explained by the float64 recheck)"
                    if report.warnings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
