"""How the extension is compiled and linked against the C++ runtime: the one place to switch it.

On the H200 machine an extension built there died with signal 11 whenever it raised an exception whose message held a
number formatted by operator<< (TORCH_CHECK(cond, "x: ", 5)); a ten-line extension without opt4gptq code did the same,
so it is a matter of how extensions are built there (the compiler and libstdc++ against the libstdc++ the Python
process has loaded). tools/exception_build_probe.py builds a tiny extension with each setting below on the target
machine, runs it, and names the first setting that survives; setup.py applies the setting named by the environment
variable OPT4GPTQ_BUILD_SETTING, else DEFAULT. python/README.md ("Exceptions and the build") records what was found.

The package's own error path does not depend on this: its messages are formatted with snprintf and raised as one C
string, so no iostream formats a number in it (csrc/ops.cpp).

Used by setup.py and by tools/exception_build_probe.py; imports nothing but the standard library (and torch for
ABI_FLAG at call time).
"""
import os
import re
import shutil
import subprocess

# TODO(lead): after the H200 run, set this to the setting the probe recommends (python/README.md says which).
# Measured on the H200 machine (2026-12-02, tools/exception_build_probe.py): with torch's default flags, and with any
# libstdc++ linked dynamically, an exception whose message holds a number kills the process (signal 11); a private,
# hidden copy of libstdc++ in the extension survives every case (so do g++-12 and clang++-16 there).
DEFAULT = "static-libstdc++"


def _cxx():
    return os.environ.get("CXX", "c++")


def loaded_libstdcxx():
    """Path of the libstdc++ this Python process has mapped (after `import torch`), or None."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if re.search(r"/libstdc\+\+\.so[.\d]*$", path):
                    return path
    except OSError:
        pass
    return None


def find_compilers():
    """C++ compilers on PATH: (name, path, version line). The default `c++` first."""
    found, seen = [], set()
    names = ["c++", "g++"] + [f"g++-{v}" for v in range(8, 16)] + ["clang++"] + [f"clang++-{v}" for v in range(10, 22)]
    for name in names:
        path = shutil.which(name)
        if not path:
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            version = subprocess.run([path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, timeout=30).stdout.splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            version = "?"
        found.append((name, path, version))
    return found


def _c_compiler_for(cxx_path):
    """gcc-N for g++-N, clang-N for clang++-N (nvcc's -ccbin and setuptools' CC), or None."""
    directory, base = os.path.split(cxx_path)
    for cxx, cc in (("g++", "gcc"), ("clang++", "clang"), ("c++", "cc")):
        if base.startswith(cxx):
            candidate = os.path.join(directory, cc + base[len(cxx):])
            if os.path.exists(candidate):
                return candidate
    return None


def settings():
    """name -> dict(env=..., cflags=..., ldflags=..., note=...), in the order the probe prefers them."""
    cxx = _cxx()
    link_cxx = {"LDSHARED": f"{cxx} -shared"}
    out = {
        "default": dict(env={}, cflags=[], ldflags=[],
                        note="torch.utils.cpp_extension's flags; setuptools links with Python's LDSHARED"),
        "link-with-cxx": dict(env=link_cxx, cflags=[], ldflags=[],
                              note="the C++ driver links (LDSHARED = $CXX -shared): libstdc++ named explicitly"),
    }
    lib = loaded_libstdcxx()
    if lib:
        directory = os.path.dirname(lib)
        out["loaded-libstdc++"] = dict(
            env=link_cxx, cflags=[], ldflags=[f"-L{directory}", f"-Wl,-rpath,{directory}"],
            note=f"link against the libstdc++ the process loaded ({lib})")
    out["static-libstdc++"] = dict(
        env=link_cxx, cflags=[], ldflags=["-static-libstdc++", "-Wl,--exclude-libs,ALL"],
        note="a private, hidden copy of libstdc++ in the extension")
    out["static-libstdc++-libgcc"] = dict(
        env=link_cxx, cflags=[], ldflags=["-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL"],
        note="also a private libgcc (unwinder)")
    out["cxx11-abi-0"] = dict(env={}, cflags=["-D_GLIBCXX_USE_CXX11_ABI=0"], ldflags=[], note="old std::string ABI")
    out["cxx11-abi-1"] = dict(env={}, cflags=["-D_GLIBCXX_USE_CXX11_ABI=1"], ldflags=[], note="new std::string ABI")
    for name, path, version in find_compilers()[1:]:
        env = {"CXX": path, "LDSHARED": f"{path} -shared"}
        cc = _c_compiler_for(path)
        if cc:
            env["CC"] = cc
        out[f"cxx:{name}"] = dict(env=env, cflags=[], ldflags=[], note=version)
    return out


def get(name=None):
    """The setting to build with: `name`, else $OPT4GPTQ_BUILD_SETTING, else DEFAULT."""
    name = name or os.environ.get("OPT4GPTQ_BUILD_SETTING") or DEFAULT
    table = settings()
    if name not in table:
        raise SystemExit(f"OPT4GPTQ_BUILD_SETTING={name!r} is not one of: {', '.join(table)}")
    return name, table[name]


def apply_env(setting):
    """Sets the setting's environment (CXX, CC, LDSHARED) in this process, for setuptools and torch's builder."""
    for key, value in setting["env"].items():
        os.environ[key] = value
