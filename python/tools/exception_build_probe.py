#!/usr/bin/env python3
"""Which way of building a PyTorch extension on this machine survives raising an exception whose message holds a
number (issue 12: on the H200 machine TORCH_CHECK(cond, "x: ", 5) killed the process with signal 11, also in a
ten-line extension without opt4gptq code).

    python3 python/tools/exception_build_probe.py [--out DIR] [--json FILE] [--jobs N]

In one run it:
  1. prints the machine's side of the question: Python and its sysconfig compiler/linker, torch and its
     _GLIBCXX_USE_CXX11_ABI, the C++ compilers on PATH, `ldd` of torch's _C and libtorch_python, and the libstdc++ /
     libgcc_s this process has mapped after `import torch` (/proc/self/maps);
  2. builds one tiny extension (pybind11 functions and a TORCH_LIBRARY op) with every setting of
     python/build_settings.py (default flags; the C++ driver linking; against the libstdc++ the process loaded;
     -static-libstdc++; -D_GLIBCXX_USE_CXX11_ABI=0 and =1; CXX/CC = each compiler found), in parallel, the way the
     package is built (setuptools + torch.utils.cpp_extension);
  3. runs each build in fresh subprocesses, one call each: format a number with operator<< (no exception); raise
     with a string; raise with a number via TORCH_CHECK (operator<<); raise with a number formatted by snprintf; throw
     std::runtime_error; raise a number through the TORCH_LIBRARY op;
  4. prints a table (setting -> survived / signal / import error per call) and the setting to build with: the first, in
     build_settings' order, under which every call behaves. --json writes all of it; run_gpu_checks.sh passes the
     recommendation to the package build (OPT4GPTQ_BUILD_SETTING).
Exit status 0 when some setting survives everything, 1 otherwise.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import build_settings  # noqa: E402

EXTENSION = r'''
#include <torch/extension.h>
#include <torch/library.h>

#include <cstdio>
#include <stdexcept>
#include <string>

// operator<< formats the number (c10::str -> std::ostringstream), no exception.
std::string format_number() { return c10::str("x: ", 5); }
// The reported crash: TORCH_CHECK with a number in the message.
void raise_number() { TORCH_CHECK(false, "x: ", 5); }
// Control: a message without a number.
void raise_string() { TORCH_CHECK(false, "x: five"); }
// The package's way: the number formatted by snprintf, the message passed as one C string.
void raise_snprintf() {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "x: %d", 5);
  TORCH_CHECK(false, buffer);
}
// A standard exception whose message holds a number (std::to_string), thrown through pybind11.
void throw_std() { throw std::runtime_error(std::string("x: ") + std::to_string(5)); }
// The same TORCH_CHECK through a TORCH_LIBRARY op and the dispatcher (the package's path).
int64_t op_raise_number(int64_t v) {
  TORCH_CHECK(v < 0, "x: ", v);
  return v;
}

TORCH_LIBRARY(opt4gptq_probe, m) { m.def("raise_number(int v) -> int", &op_raise_number); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("format_number", &format_number);
  m.def("raise_number", &raise_number);
  m.def("raise_string", &raise_string);
  m.def("raise_snprintf", &raise_snprintf);
  m.def("throw_std", &throw_std);
}
'''

SETUP = r'''
import os, sys
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension
setup(name="opt4gptq_probe_ext",
      ext_modules=[CppExtension("opt4gptq_probe_ext", ["probe_ext.cpp"], extra_compile_args={cflags!r},
                                extra_link_args={ldflags!r})],
      cmdclass={{"build_ext": BuildExtension}})
'''

CHILD = r'''
import importlib.util, sys
import torch
path, call = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("opt4gptq_probe_ext", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if call == "format_number":
    assert module.format_number() == "x: 5", module.format_number()
    print("PROBE-OK", flush=True)
    sys.exit(0)
try:
    if call == "op_raise_number":
        torch.ops.opt4gptq_probe.raise_number(5)
    else:
        getattr(module, call)()
except RuntimeError as e:
    text = str(e)
    assert "x: 5" in text or "x: five" in text, text
    print("PROBE-OK", type(e).__name__, flush=True)
    sys.exit(0)
print("PROBE-NO-EXCEPTION", flush=True)
sys.exit(3)
'''

CALLS = ["format_number", "raise_string", "raise_number", "raise_snprintf", "throw_std", "op_raise_number"]


def sh(cmd, timeout=60):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              shell=isinstance(cmd, str)).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"({e})"


def glibcxx_max(path):
    """The newest GLIBCXX_3.4.x symbol version a libstdc++ provides."""
    try:
        with open(path, "rb") as f:
            versions = {int(v) for v in re.findall(rb"GLIBCXX_3\.4\.(\d+)", f.read())}
        return f"GLIBCXX_3.4.{max(versions)}" if versions else "?"
    except OSError:
        return "?"


def environment_report():
    import torch
    lines = [f"python: {sys.executable} {sys.version.split()[0]}",
             f"torch: {torch.__version__} (CUDA {torch.version.cuda}), torch._C._GLIBCXX_USE_CXX11_ABI = "
             f"{torch._C._GLIBCXX_USE_CXX11_ABI}"]
    for key in ("CC", "CXX", "LDSHARED", "CFLAGS", "LDFLAGS"):
        lines.append(f"sysconfig {key}: {sysconfig.get_config_var(key)!r}   (environment: {os.environ.get(key)!r})")
    lines.append("C++ compilers on PATH:")
    for name, path, version in build_settings.find_compilers():
        lib = sh([path, "-print-file-name=libstdc++.so.6"])
        lines.append(f"  {name:12s} {path:28s} {version}")
        lines.append(f"  {'':12s} its libstdc++: {os.path.realpath(lib) if os.path.exists(lib) else lib} "
                     f"({glibcxx_max(lib) if os.path.exists(lib) else '-'})")
    torch_dir = os.path.dirname(torch.__file__)
    for pattern in ("_C*.so", "lib/libtorch_python.so", "lib/libc10.so"):
        for lib in glob.glob(os.path.join(torch_dir, pattern)):
            lines.append(f"ldd {lib}:")
            lines += ["    " + line.strip() for line in sh(["ldd", lib]).splitlines()
                      if re.search(r"stdc\+\+|gcc_s|libc\.so|libm\.so|not found", line)]
    lines.append("mapped in this process after `import torch` (/proc/self/maps):")
    seen = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and re.search(r"libstdc\+\+|libgcc_s", parts[-1]) and parts[-1] not in seen:
                seen.add(parts[-1])
                extra = f" ({glibcxx_max(parts[-1])})" if "stdc++" in parts[-1] else ""
                lines.append(f"  {os.path.realpath(parts[-1])}{extra}")
    return lines


def build(name, setting, root):
    directory = os.path.join(root, re.sub(r"[^A-Za-z0-9_.+-]", "_", name))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "probe_ext.cpp"), "w") as f:
        f.write(EXTENSION)
    with open(os.path.join(directory, "setup.py"), "w") as f:
        f.write(SETUP.format(cflags=setting["cflags"], ldflags=setting["ldflags"]))
    env = dict(os.environ, MAX_JOBS="1", **setting["env"])
    start = time.time()
    try:
        out = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=directory, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        log, ok = out.stdout, out.returncode == 0
    except subprocess.TimeoutExpired:
        log, ok = "build timed out (600 s)", False
    with open(os.path.join(directory, "build.log"), "w") as f:
        f.write(log)
    built = glob.glob(os.path.join(directory, "opt4gptq_probe_ext*.so"))
    return dict(ok=ok and bool(built), path=built[0] if built else None, seconds=round(time.time() - start, 1),
                log_tail="\n".join(log.splitlines()[-15:]))


def run_call(path, call):
    try:
        child = subprocess.run([sys.executable, "-c", CHILD, path, call], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return "hung"
    if child.returncode == 0 and "PROBE-OK" in child.stdout:
        return "ok"
    if child.returncode < 0:
        return f"signal {-child.returncode}"
    if "ImportError" in child.stdout or "undefined symbol" in child.stdout:
        return "import error"
    return f"exit {child.returncode}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="build directory (default: a temporary one)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    report = environment_report()
    print("\n".join(report), flush=True)
    table = build_settings.settings()
    root = args.out or tempfile.mkdtemp(prefix="opt4gptq_probe_")
    os.makedirs(root, exist_ok=True)
    print(f"\nbuilding {len(table)} variants in {root} ({args.jobs} at a time) ...", flush=True)
    start = time.time()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        builds = dict(zip(table, pool.map(lambda item: build(item[0], item[1], root), table.items())))
    print(f"built in {time.time() - start:.0f} s", flush=True)

    jobs = [(name, call) for name, b in builds.items() if b["ok"] for call in CALLS]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = dict(zip(jobs, pool.map(lambda job: run_call(builds[job[0]]["path"], job[1]), jobs)))

    width = max(len(n) for n in table) + 2
    print("\n" + "setting".ljust(width) + "".join(c.ljust(17) for c in CALLS) + "note")
    results, recommended = {}, None
    for name, setting in table.items():
        b = builds[name]
        if not b["ok"]:
            row = {call: "build failed" for call in CALLS}
        else:
            row = {call: outcomes[(name, call)] for call in CALLS}
        results[name] = dict(calls=row, setting=setting, build_seconds=b["seconds"],
                             build_log_tail=None if b["ok"] else b["log_tail"])
        if recommended is None and all(v == "ok" for v in row.values()):
            recommended = name
        print(name.ljust(width) + "".join(row[c].ljust(17) for c in CALLS) + setting["note"], flush=True)
    for name, b in builds.items():
        if not b["ok"]:
            print(f"\n--- {name}: build failed; last lines:\n{b['log_tail']}")
    print(f"\nrecommended build setting: {recommended or 'NONE survives every call'}")
    if recommended and recommended != "default":
        print(f"(build the package with OPT4GPTQ_BUILD_SETTING={recommended}, or set DEFAULT in "
              "python/build_settings.py)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(environment=report, results=results, recommended=recommended, calls=CALLS), f, indent=1)
    return 0 if recommended else 1


if __name__ == "__main__":
    sys.exit(main())
