#!/usr/bin/python3
"""The paper's language-model comparison in small: every attention variant of models/lm/ trained the same way.

Each model is compiled with its train_step entry (synthc --train), trained with `synth-run train` for the same
number of steps on the same data in the same order (same seed), then evaluated on the whole held-out split. The
table (markdown, and JSON next to it) gives held-out loss and perplexity, parameter count, training tokens/s and
wall time, in the order of the paper's LM1B table.

usage: compare_variants.py [--data DIR] [--out DIR] [--steps N] [--batch B] [--seq-len N] [--bin DIR]
                           [--models a,b,...]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The paper's LM1B perplexities (PAPER.md; approximate, from secondary sources); None where the paper has none.
PAPER = {"dot": 38.21, "random": 40.60, "dense": 40.9, "factorized_random": 42.4, "random_dot": 40.05,
         "dense_dot": 37.27, "fixed_random": None, "factorized_dense": None, "random_dense": None}
ORDER = ["dot", "dense", "random", "fixed_random", "factorized_random", "factorized_dense", "random_dot",
         "dense_dot", "random_dense"]


def run(cmd, log):
    print("+ " + " ".join(cmd), flush=True)
    with open(log, "a") as out:
        out.write("+ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}); see {log}")


def parameters(bin_dir, model):
    text = subprocess.run([os.path.join(bin_dir, "synthc"), "--stats", model], check=True,
                          capture_output=True, text=True).stdout
    match = re.search(r"parameters: (\d+) total, (\d+) trainable", text)
    return int(match.group(1)), int(match.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--data", default=os.path.join(ROOT, "build", "data", "kjv"))
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "compare"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    parser.add_argument("--models", default=",".join(ORDER))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if not os.path.exists(os.path.join(args.data, "manifest.json")):
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "prepare_kjv.py"), args.data], check=True)
    baseline = json.loads(subprocess.run(
        ["/usr/bin/python3", os.path.join(ROOT, "scripts", "unigram_baseline.py"), args.data, "--json"],
        check=True, capture_output=True, text=True).stdout)

    rows = []
    for name in args.models.split(","):
        model = os.path.join(ROOT, "models", "lm", f"{name}.json")
        artifact = os.path.join(args.out, f"{name}.synth")
        log = os.path.join(args.out, f"{name}.log")
        metrics = os.path.join(args.out, f"{name}.jsonl")
        for stale in (log, metrics):
            if os.path.exists(stale):
                os.remove(stale)
        subprocess.run(["rm", "-rf", artifact, os.path.join(args.out, f"{name}.ckpt")], check=True)
        run([os.path.join(args.bin, "synthc"), model, "--target=cpu", "--cpu=host", "--train",
             f"--batch={args.batch}", f"--seq-len={args.seq_len}", "-o", artifact], log)
        start = time.time()
        run([os.path.join(args.bin, "synth-run"), "train", artifact, "--data", args.data,
             "--steps", str(args.steps), "--eval-every", str(args.steps), "--checkpoint-every", str(args.steps),
             "--checkpoint", os.path.join(args.out, f"{name}.ckpt"), "--metrics", metrics,
             "--plot", os.path.join(args.out, f"{name}.svg"), "--threads", "2", "--sample-tokens", "0",
             "--seed", "0"], log)
        wall = time.time() - start
        steps, evals = [], []
        with open(metrics) as f:
            for line in f:
                record = json.loads(line)
                (evals if "eval_loss" in record else steps).append(record)
        total, trainable = parameters(args.bin, model)
        speeds = [r["tokens_per_second"] for r in steps if r.get("tokens_per_second")]
        final = evals[-1]
        rows.append({"model": name, "eval_loss": final["eval_loss"], "eval_perplexity": final["eval_perplexity"],
                     "train_loss": steps[-1]["loss"], "parameters": total, "trainable": trainable,
                     "tokens_per_second": statistics.median(speeds) if speeds else None,
                     "train_seconds": steps[-1].get("elapsed_seconds"), "wall_seconds": wall,
                     "tokens": args.steps * args.batch * args.seq_len, "paper_lm1b_ppl": PAPER.get(name)})
        print(json.dumps(rows[-1]), flush=True)

    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"baseline": baseline, "steps": args.steps, "batch": args.batch, "seq_len": args.seq_len,
                   "rows": rows}, f, indent=2)
    lines = ["| variant | held-out loss (nats/byte) | held-out ppl | params | train tok/s | train time s | "
             "paper LM1B ppl |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        paper = f"{r['paper_lm1b_ppl']:.2f}" if r["paper_lm1b_ppl"] else "-"
        lines.append(f"| {r['model']} | {r['eval_loss']:.4f} | {r['eval_perplexity']:.3f} | "
                     f"{r['parameters'] / 1e6:.3f}M | {r['tokens_per_second']:.0f} | {r['train_seconds']:.0f} | "
                     f"{paper} |")
    lines.append(f"| unigram baseline | {baseline['loss']:.4f} | {baseline['perplexity']:.2f} | - | - | - | - |")
    table = "\n".join(lines)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
