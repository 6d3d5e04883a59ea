# lit configuration for synthc: runs every .mlir test under test/ with the
# project's tools (build/bin) and LLVM 22's FileCheck, not, count, split-file.
import os

import lit.formats
import lit.util
from lit.llvm import llvm_config

config.name = "synthc"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.synth_obj_root, "test")
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py.in", "unit", "reference", "e2e", "runtime"]

llvm_config.with_system_environment(["HOME", "TMPDIR"])
# lit scrubs the environment; CUDA_HOME lets ptxas-based tests find libdevice.
if config.cuda_enabled:
    config.environment["CUDA_HOME"] = os.path.dirname(config.cuda_bin_dir)
    config.available_features.add("cuda")

import platform
if platform.machine() in ("x86_64", "AMD64"):
    config.available_features.add("x86-64")

# The real corpus (Debian's sword-text-kjv and libsword-utils, installed by scripts/setup.sh).
import shutil
if shutil.which("mod2vpl") and os.path.exists("/usr/share/sword/mods.d/engKJV2006eb.conf"):
    config.available_features.add("kjv")

llvm_config.use_default_substitutions()
config.substitutions.append(("%synth_src_root", config.synth_src_root))

tool_dirs = [config.synth_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["synth-opt", "synthc", "synth-run"], tool_dirs)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
