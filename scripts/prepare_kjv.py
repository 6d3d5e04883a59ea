#!/usr/bin/python3
"""Prepares the King James Bible (Debian's sword-text-kjv) as a language-modelling corpus: bytes or SentencePiece ids.

Usage: scripts/prepare_kjv.py OUT_DIR [--held-out FRACTION] [--vpl FILE]
                              [--tokenizer bytes|sentencepiece] [--vocab-size N]

Reads the verses with `mod2vpl engKJV2006eb` (Debian's libsword-utils; or from --vpl FILE, a saved copy of
that output), cleans the OSIS markup (drops `:0` heading lines, removes <note>...</note> and <title>...</title>
with their text, then every other tag, and squeezes spaces), and groups verses into documents, one per chapter
("Genesis 1"). A document goes to the held-out set when the first 8 bytes of SHA-256(its name), read as an
integer, fall below FRACTION (default 0.05) of 2^64: deterministic, independent of order, and by document, so no
held-out verse is ever next to a training verse in the training text.

Writes OUT_DIR/train.txt and OUT_DIR/heldout.txt (chapters separated by a blank line, each verse on its own line)
and OUT_DIR/manifest.json (document and byte counts, SHA-256 of both files). Exits 1 with a message naming what
is missing when mod2vpl or the module is not installed, or when the input holds no verses.

--tokenizer=sentencepiece (default: bytes, which needs nothing more) also trains a unigram SentencePiece model of
--vocab-size pieces (default 4096) with Debian's `spm_train` on train.txt only, never on the held-out text, into
OUT_DIR/spm.model and OUT_DIR/spm.vocab, and encodes both splits with `spm_encode` to OUT_DIR/train.ids.npy and
OUT_DIR/heldout.ids.npy: 1-D int32 arrays, each line's pieces followed by </s> (id 2), so a blank line between
chapters is a lone </s>. Training is deterministic (one thread, no sampling of input sentences, a fixed seed,
paths relative to OUT_DIR): two runs write the same bytes. Preparing bytes into a folder removes these files, so
a folder never holds ids of an older text.
"""

import argparse
import array
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

MODULE = "engKJV2006eb"
VERSE = re.compile(r"^(?P<book>.+?) (?P<chapter>\d+):(?P<verse>\d+) (?P<text>.*)$")

# SentencePiece's reserved ids (fixed so that readers can rely on them): <unk> 0, <s> 1, </s> 2 ends every line.
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
STALE_FILES = ("manifest.json", "spm.model", "spm.vocab", "train.ids.npy", "heldout.ids.npy")


def clean(markup):
    text = re.sub(r"<note\b.*?</note>", "", markup, flags=re.S)
    text = re.sub(r"<title\b.*?</title>", "", text, flags=re.S)
    text = re.sub(r"<[^>]*>", "", text)
    return re.sub(r"\s+", " ", text).strip()


def read_vpl(path):
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError as error:
            sys.exit(f"prepare_kjv: cannot read {path}: {error.strerror}")
    if not shutil.which("mod2vpl"):
        sys.exit("prepare_kjv: mod2vpl not found (install Debian's libsword-utils and sword-text-kjv)")
    result = subprocess.run(["mod2vpl", MODULE, "1"], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        sys.exit(f"prepare_kjv: `mod2vpl {MODULE} 1` produced nothing (is sword-text-kjv installed?) "
                 f"{result.stderr.strip()}")
    return result.stdout


def held_out(name, fraction):
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2 ** 64


def write_atomic(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def npy_int32(ids):
    """The .npy (version 1.0) bytes of a 1-D little-endian int32 array."""
    values = array.array("i", ids)
    assert values.itemsize == 4
    if sys.byteorder != "little":
        values.byteswap()
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': (%d,), }" % len(values)
    # Magic (6) + version (2) + header length (2) + header, padded with spaces and a newline to 64 bytes.
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + values.tobytes()


def run_tool(argv, cwd, stdin=None):
    if not shutil.which(argv[0]):
        sys.exit(f"prepare_kjv: {argv[0]} not found (install Debian's sentencepiece, or use --tokenizer=bytes)")
    result = subprocess.run(argv, cwd=cwd, stdin=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        # SentencePiece logs progress to stderr and ends a failure with a generic line; the reason is the line
        # before it, after the failed check's "[condition] ".
        lines = [line for line in result.stderr.splitlines()
                 if line.strip() and "LOG(INFO)" not in line and "unrecoverable error" not in line]
        why = re.sub(r"^.*\] ", "", lines[-1]) if lines else "no message"
        sys.exit(f"prepare_kjv: {argv[0]} failed (exit {result.returncode}): {why}")
    return result.stdout


def spm_train_argv(vocab_size):
    # Relative paths, run inside OUT_DIR: the model records its trainer options (input, prefix), so absolute paths
    # would make models of two folders differ. One thread: the unigram EM's sums depend on the thread count.
    return ["spm_train", "--input=train.txt", "--model_prefix=spm", "--model_type=unigram",
            f"--vocab_size={vocab_size}", "--character_coverage=1.0", "--input_sentence_size=100000000",
            "--shuffle_input_sentence=false", "--random_seed=1", "--num_threads=1",
            f"--unk_id={UNK_ID}", f"--bos_id={BOS_ID}", f"--eos_id={EOS_ID}", "--pad_id=-1"]


def encode_split(out_dir, part, vocab_size):
    """Encodes OUT_DIR/part.txt line by line; each line's ids are followed by </s>."""
    path = os.path.join(out_dir, f"{part}.txt")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]  # every line ends with a newline
    with open(path, "rb") as f:
        encoded = run_tool(["spm_encode", "--model=spm.model", "--output_format=id"], out_dir, stdin=f)
    rows = encoded.split("\n")[:-1]
    if len(rows) != len(lines):
        sys.exit(f"prepare_kjv: spm_encode wrote {len(rows)} lines for the {len(lines)} lines of {path}")
    ids = []
    for row in rows:
        ids.extend(int(token) for token in row.split())
        ids.append(EOS_ID)
    if not 0 <= min(ids) <= max(ids) < vocab_size:
        sys.exit(f"prepare_kjv: spm_encode wrote ids outside [0, {vocab_size}) for {path}")
    data = npy_int32(ids)
    write_atomic(os.path.join(out_dir, f"{part}.ids.npy"), data)
    return {"tokens": len(ids), "unknown": ids.count(UNK_ID), "sha256": hashlib.sha256(data).hexdigest()}


def train_sentencepiece(out_dir, vocab_size):
    """Trains spm.model on train.txt alone and encodes both splits; returns the manifest's tokenizer entry."""
    argv = spm_train_argv(vocab_size)
    run_tool(argv, out_dir)
    with open(os.path.join(out_dir, "spm.model"), "rb") as f:
        model_sha256 = hashlib.sha256(f.read()).hexdigest()
    entry = {"kind": "sentencepiece", "vocab_size": vocab_size, "model": "spm.model", "model_sha256": model_sha256,
             "trained_on": "train.txt", "spm_train": argv[1:], "line_end": "</s>", "eos_id": EOS_ID}
    for part in ("train", "heldout"):
        entry[part] = encode_split(out_dir, part, vocab_size)
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--held-out", type=float, default=0.05)
    parser.add_argument("--vpl", help="a saved `mod2vpl engKJV2006eb 1` output instead of running mod2vpl")
    parser.add_argument("--tokenizer", choices=["bytes", "sentencepiece"], default="bytes",
                        help="bytes (vocabulary 256) or a SentencePiece model trained on train.txt")
    parser.add_argument("--vocab-size", type=int, default=4096, help="SentencePiece vocabulary size (default 4096)")
    args = parser.parse_args()
    if not 0.0 < args.held_out < 1.0:
        sys.exit(f"prepare_kjv: --held-out must be in (0, 1), got {args.held_out}")
    if args.tokenizer == "sentencepiece" and args.vocab_size <= EOS_ID + 1:
        sys.exit(f"prepare_kjv: --vocab-size must be above {EOS_ID + 1} (<unk>, <s>, </s> are reserved), "
                 f"got {args.vocab_size}")

    chapters = {}  # "Book C" -> verses, in reading order
    for line in read_vpl(args.vpl).splitlines():
        match = VERSE.match(line)
        if not match or match["verse"] == "0":
            continue
        text = clean(match["text"])
        if text:
            chapters.setdefault(f"{match['book']} {match['chapter']}", []).append(text)
    if not chapters:
        sys.exit("prepare_kjv: no verses found in the input (expected lines `Book C:V text`)")

    os.makedirs(args.out_dir, exist_ok=True)
    # Readers pick SentencePiece whenever spm.model exists: files of an older preparation must not survive, even
    # when this one fails (manifest.json comes last, once everything else is written).
    for name in STALE_FILES:
        if os.path.exists(os.path.join(args.out_dir, name)):
            os.remove(os.path.join(args.out_dir, name))
    parts = {"train": [], "heldout": []}
    for name, verses in chapters.items():
        parts["heldout" if held_out(name, args.held_out) else "train"].append("\n".join(verses))
    manifest = {"source": f"Debian sword-text-kjv, module {MODULE}", "held_out_fraction": args.held_out,
                "split": "by chapter: SHA-256(name)[:8] < fraction * 2^64"}
    for part, documents in parts.items():
        data = ("\n\n".join(documents) + "\n").encode()
        write_atomic(os.path.join(args.out_dir, f"{part}.txt"), data)
        manifest[part] = {"documents": len(documents), "bytes": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()}
    if args.tokenizer == "sentencepiece":
        manifest["tokenizer"] = train_sentencepiece(args.out_dir, args.vocab_size)
    else:
        manifest["tokenizer"] = {"kind": "bytes", "vocab_size": 256}
    with open(os.path.join(args.out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"prepare_kjv: {manifest['train']['documents']} training chapters ({manifest['train']['bytes']} bytes), "
          f"{manifest['heldout']['documents']} held out ({manifest['heldout']['bytes']} bytes) -> {args.out_dir}")
    if args.tokenizer == "sentencepiece":
        tokens = manifest["tokenizer"]
        print(f"prepare_kjv: SentencePiece vocabulary {args.vocab_size} trained on train.txt: "
              f"{tokens['train']['tokens']} training tokens, {tokens['heldout']['tokens']} held-out tokens "
              f"({tokens['heldout']['unknown']} <unk>)")


if __name__ == "__main__":
    main()
