"""Builds opt4gptq's PyTorch extension ahead of time with torch.utils.cpp_extension.CUDAExtension.

    pip install --no-build-isolation ./python          (a machine with CUDA PyTorch and nvcc; no network needed)

The library's headers come from ../include beside this file (the repository), or from $OPT4GPTQ_INCLUDE_DIR.
Device code is built for sm_80 and sm_90 (the kernels use mma.sync, sm_80+); $OPT4GPTQ_CUDA_ARCHS (e.g. "80;90;100")
replaces the list. How the extension links against the C++ runtime is build_settings.py's choice
($OPT4GPTQ_BUILD_SETTING). $MAX_JOBS limits ninja's parallel compilations (one translation unit per preset).
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)  # setuptools wants source paths relative to setup.py
sys.path.insert(0, HERE)  # build_settings.py: PEP 517 builds do not put this directory on sys.path

import build_settings  # noqa: E402
from setuptools import find_packages, setup  # noqa: E402
from torch.utils.cpp_extension import BuildExtension, CUDAExtension  # noqa: E402


def include_dir():
    candidates = [os.environ.get("OPT4GPTQ_INCLUDE_DIR"), os.path.join(HERE, os.pardir, "include")]
    for candidate in candidates:
        if candidate and os.path.isfile(os.path.join(candidate, "opt4gptq", "opt4gptq.hpp")):
            return os.path.abspath(candidate)
    raise SystemExit("opt4gptq headers not found: looked in $OPT4GPTQ_INCLUDE_DIR and ../include beside setup.py "
                     f"({os.path.abspath(candidates[1])}); set OPT4GPTQ_INCLUDE_DIR to the repository's include/")


def gencode_flags():
    archs = [a for a in os.environ.get("OPT4GPTQ_CUDA_ARCHS", "80;90").replace(",", ";").split(";") if a.strip()]
    # Explicit -gencode flags also stop torch from adding its own (it adds none when a flag mentions 'arch').
    return [f"-gencode=arch=compute_{a.strip()},code=sm_{a.strip()}" for a in archs]


setting_name, setting = build_settings.get()
build_settings.apply_env(setting)
print(f"opt4gptq: build setting {setting_name!r}: {setting['note']}; env {setting['env']}, "
      f"cflags {setting['cflags']}, ldflags {setting['ldflags']}", flush=True)

# The kernels' translation units (.cu) include no PyTorch header: they are built as C++17, the library's standard.
# ops.cpp includes ATen, whose required standard depends on the torch release (C++17 up to 2.11, C++20 from 2.12/2.13):
# no -std flag for it, so torch's builder chooses.
nvcc_flags = ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "-lineinfo"] + gencode_flags()
nvcc_flags += [f"-Xcompiler={flag}" for flag in setting["cflags"]]
cxx_flags = ["-O3"] + setting["cflags"]

sources = ["csrc/ops.cpp", "csrc/dispatch.cu", "csrc/act_order.cu"] + sorted(glob.glob("csrc/presets/*.cu"))

# Name, version and description are in pyproject.toml.
setup(
    packages=find_packages(include=["opt4gptq", "opt4gptq.*"]),
    ext_modules=[
        CUDAExtension(
            name="opt4gptq._C",
            sources=sources,
            include_dirs=[include_dir(), os.path.join(HERE, "csrc")],
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
            extra_link_args=setting["ldflags"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
    zip_safe=False,
)
