#!/usr/bin/env python3
"""Assembles every kernel of `synthc --emit=ptx` output with ptxas -v and checks the resources.

usage: check-ptx.py PTX_FILE --arch sm_90a [--no-spill REGEX] [--max-smem BYTES] [--mma REGEX]

Prints one line per kernel: `kernel NAME regs R spill_stores S spill_loads L smem B stack K`, then `ok N kernels`.
Exits non-zero when ptxas rejects a kernel, when a kernel matching --no-spill spills to local memory, or when a
kernel's shared memory exceeds --max-smem.
Kernels whose text is identical but for their name (the layers of a stack repeat theirs) are assembled once, and
each still gets its line. With --mma, every kernel matching REGEX must contain tensor-core
instructions (`mma.sync.aligned.m16n8k16`); for each, `mma NAME COUNT TYPE` is printed after its kernel line. ptxas comes from $CUDA_HOME/bin (lit passes CUDA_HOME).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def split_kernels(text):
    kernels = []
    for chunk in re.split(r"^// kernel ", text, flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        kernels.append((name.strip(), body))
    return kernels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ptx")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--no-spill", default=None)
    parser.add_argument("--max-smem", type=int, default=48 * 1024)
    parser.add_argument("--mma", default=None)
    args = parser.parse_args()
    ptxas = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "ptxas")
    with open(args.ptx) as f:
        kernels = split_kernels(f.read())
    if not kernels:
        print("error: no '// kernel' sections in", args.ptx)
        return 1
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        assembled = {}  # kernel text with its name taken out -> (exit status, ptxas log with the name taken out)
        for name, body in kernels:
            identity = body.replace(name, "@KERNEL@")
            if identity not in assembled:
                path = os.path.join(tmp, name + ".ptx")
                with open(path, "w") as f:
                    f.write(body)
                run = subprocess.run([ptxas, "-v", "-O3", "-arch", args.arch, path, "-o", path + ".cubin"],
                                     capture_output=True, text=True)
                assembled[identity] = (run.returncode, (run.stdout + run.stderr).replace(name, "@KERNEL@"))
            returncode, log = assembled[identity]
            log = log.replace("@KERNEL@", name)
            if returncode != 0:
                print(f"error: ptxas rejected kernel {name}:\n{log}")
                failures += 1
                continue
            def number(pattern):
                m = re.search(pattern, log)
                return int(m.group(1)) if m else 0
            regs = number(r"Used (\d+) registers")
            stores = number(r"(\d+) bytes spill stores")
            loads = number(r"(\d+) bytes spill loads")
            smem = number(r"(\d+) bytes smem")
            stack = number(r"(\d+) bytes stack frame")
            print(f"kernel {name} regs {regs} spill_stores {stores} spill_loads {loads} smem {smem} stack {stack}")
            if args.mma and re.search(args.mma, name):
                mmas = re.findall(r"mma\.sync\.aligned\.m16n8k16\.\S+", body)
                if not mmas:
                    print(f"error: kernel {name} has no mma.sync.aligned.m16n8k16")
                    failures += 1
                else:
                    print(f"mma {name} {len(mmas)} {mmas[0]}")
            if args.no_spill and re.search(args.no_spill, name) and (stores or loads or stack):
                print(f"error: kernel {name} uses local memory (spills {stores}/{loads} bytes, stack {stack})")
                failures += 1
            if smem > args.max_smem:
                print(f"error: kernel {name} needs {smem} bytes of shared memory (> {args.max_smem})")
                failures += 1
    if failures:
        return 1
    print(f"ok {len(kernels)} kernels ({len(assembled)} distinct, each assembled once)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
