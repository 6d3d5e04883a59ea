#!/usr/bin/python3
"""Prepares the King James Bible (Debian's sword-text-kjv) as a byte-level language-modelling corpus.

Usage: scripts/prepare_kjv.py OUT_DIR [--held-out FRACTION] [--vpl FILE]

Reads the verses with `mod2vpl engKJV2006eb` (Debian's libsword-utils; or from --vpl FILE, a saved copy of
that output), cleans the OSIS markup (drops `:0` heading lines, removes <note>...</note> and <title>...</title>
with their text, then every other tag, and squeezes spaces), and groups verses into documents, one per chapter
("Genesis 1"). A document goes to the held-out set when the first 8 bytes of SHA-256(its name), read as an
integer, fall below FRACTION (default 0.05) of 2^64: deterministic, independent of order, and by document, so no
held-out verse is ever next to a training verse in the training text.

Writes OUT_DIR/train.txt and OUT_DIR/heldout.txt (chapters separated by a blank line, each verse on its own line)
and OUT_DIR/manifest.json (document and byte counts, SHA-256 of both files). Exits 1 with a message naming what
is missing when mod2vpl or the module is not installed, or when the input holds no verses.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

MODULE = "engKJV2006eb"
VERSE = re.compile(r"^(?P<book>.+?) (?P<chapter>\d+):(?P<verse>\d+) (?P<text>.*)$")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--held-out", type=float, default=0.05)
    parser.add_argument("--vpl", help="a saved `mod2vpl engKJV2006eb 1` output instead of running mod2vpl")
    args = parser.parse_args()
    if not 0.0 < args.held_out < 1.0:
        sys.exit(f"prepare_kjv: --held-out must be in (0, 1), got {args.held_out}")

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
    parts = {"train": [], "heldout": []}
    for name, verses in chapters.items():
        parts["heldout" if held_out(name, args.held_out) else "train"].append("\n".join(verses))
    manifest = {"source": f"Debian sword-text-kjv, module {MODULE}", "held_out_fraction": args.held_out,
                "split": "by chapter: SHA-256(name)[:8] < fraction * 2^64"}
    for part, documents in parts.items():
        data = ("\n\n".join(documents) + "\n").encode()
        path = os.path.join(args.out_dir, f"{part}.txt")
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        manifest[part] = {"documents": len(documents), "bytes": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()}
    with open(os.path.join(args.out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"prepare_kjv: {manifest['train']['documents']} training chapters ({manifest['train']['bytes']} bytes), "
          f"{manifest['heldout']['documents']} held out ({manifest['heldout']['bytes']} bytes) -> {args.out_dir}")


if __name__ == "__main__":
    main()
