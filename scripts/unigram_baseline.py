#!/usr/bin/python3
"""Held-out perplexity of the unigram model of a prepared data folder (docs/data-format.md).

The baseline a language model must beat: token frequencies counted on the training split (add-one smoothed over
the vocabulary), cross-entropy measured on the held-out split, as a language model's loss is (nats per token).

usage: unigram_baseline.py DATA_DIR [--json]
"""
import json
import math
import os
import sys


def load_split(folder, name):
    ids = os.path.join(folder, f"{name}.ids.npy")
    if os.path.exists(os.path.join(folder, "spm.model")):
        import numpy as np
        array = np.load(ids)
        vocab = sum(1 for _ in open(os.path.join(folder, "spm.vocab"), encoding="utf-8"))
        return array.astype("int64").tolist(), vocab
    with open(os.path.join(folder, f"{name}.txt"), "rb") as f:
        return list(f.read()), 256


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    folder = argv[1]
    try:
        train, vocab = load_split(folder, "train")
        heldout, _ = load_split(folder, "heldout")
    except OSError as error:
        print(f"unigram_baseline: {error} (prepare the folder with scripts/prepare_kjv.py)", file=sys.stderr)
        return 1
    counts = [1] * vocab
    for token in train:
        counts[token] += 1
    total = sum(counts)
    nll = -sum(math.log(counts[t] / total) for t in heldout) / max(1, len(heldout))
    result = {"vocab": vocab, "heldout_tokens": len(heldout), "loss": nll, "perplexity": math.exp(nll)}
    if "--json" in argv:
        print(json.dumps(result))
    else:
        print(f"unigram baseline on {folder}: held-out loss {nll:.4f} nats/token, perplexity {math.exp(nll):.2f} "
              f"({len(heldout)} tokens, vocabulary {vocab})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
