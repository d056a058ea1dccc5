#!/usr/bin/env python3
"""The tuning mode of the benchmark: turns a bench_gemm results folder into a dispatch table (C++ data).

    bench/make_dispatch_table.py RESULTS_DIR NAME ARCH_MAJOR [--prefill-from M] [--exclude K1,K2]
        > include/opt4gptq/dispatch/NAME.hpp
    clang-format -i include/opt4gptq/dispatch/NAME.hpp

For every measured M and act-order, the layers are ordered by their bytes and each gets its fastest kernel (graph
replay), followed by its fastest kernel without fp16 partial sums (the default options) and its fastest with fp32
sums to the end and a fixed order (strict or deterministic options): choose_kernel skips a rule whose kernel is not
allowed, so the next rule of the same size bound serves those options; a kernel within TOLERANCE of the fastest that continues the previous layer's choice is kept, so that
runs of layers merge into one rule each (a rule's size bound is the midpoint to the next layer's bytes). Calls of M rows use
the rules of the smallest measured M >= M. Above the largest measured M: the largest layer's choice at that M (a
catch-all rule when it is DequantCublas, which not every build has; the table's fallback is then the fastest kernel
without it). Only kernels the library's KernelChoice names are considered (dispatch_table.hpp).

The table's invariant kernel (batch-invariant Dispatchers run it for every M) is TensorCoreDeterministic when the
results have it, else DeterministicF32.

--exclude K1,K2: leave these kernels out of the rules.

Only the fp16 rows are read (the `dtype` column fp16, or no such column: files from before bf16): the tables are the
fp16 dispatch (bf16 calls follow the same rules through the kernels' bf16 builds, host/dispatch_kernels.hpp), and a
bench_gemm --dtype both run's bf16 rows (kernels named Bf16*) are not what the rules' KernelChoice names measured.

--prefill-from M (provisional, for results without DequantCublas rows): calls of M rows and more take the prefill
path (dequantize + cuBLAS); calls between the largest measured M and M take the fallback. The rules are marked
PROVISIONAL in the generated file: measure DequantCublas (bench_gemm's prefill points) and regenerate without it.
"""
import csv
import json
import os
import sys

TOLERANCE = 0.03
# CSV kernel name -> KernelChoice enumerator (dispatch_table.hpp's kernel_info() names).
CHOICES = {"Baseline": "kBaseline", "Opt4GPTQ": "kOpt4Gptq", "Deterministic": "kDeterministic",
           "TensorCore": "kTensorCore", "TensorCoreDeterministic": "kTensorCoreDeterministic",
           "DeterministicF32": "kDeterministicF32", "DequantCublas": "kDequantCublas", "Decode": "kDecode",
           "TensorCorePipelined": "kTensorCorePipelined",
           "TensorCorePipelinedDeterministic": "kTensorCorePipelinedDeterministic"}
PREFILL = "DequantCublas"  # built only with OPT4GPTQ_WITH_CUBLAS


def rules_for(points):
    """points: [(bytes, {kernel: us})] sorted by bytes -> [(bytes_max or -1, kernel)]."""
    runs = []  # [kernel, last bytes]
    for i, (size, times) in enumerate(points):
        best = min(times, key=times.get)
        if runs and runs[-1][0] in times and times[runs[-1][0]] <= (1 + TOLERANCE) * times[best]:
            best = runs[-1][0]
        if runs and runs[-1][0] == best:
            runs[-1][1] = i
        else:
            runs.append([best, i])
    out = []
    for j, (kernel, last) in enumerate(runs):
        if j + 1 == len(runs):
            out.append((-1, kernel))
        else:
            out.append(((points[last][0] + points[last + 1][0]) // 2, kernel))
    return out


# What the options of DispatchOptions allow (dispatch_table.hpp's kernel_info), from the most permissive: every
# kernel; no fp16 partial sums that can overflow (the default options); that and a fixed order (deterministic
# options); fp32 to the end and a fixed order (strict accumulation, batch invariance).
FP16_PARTIALS = {"Baseline", "Opt4GPTQ", "Deterministic"}
DETERMINISTIC_SAFE = {"TensorCoreDeterministic", "DeterministicF32", "DequantCublas", "Decode",
                      "TensorCorePipelinedDeterministic"}
FP32_DETERMINISTIC = DETERMINISTIC_SAFE - {"Decode"}  # Decode: range-scaled fp16 partial sums (kFp16RangeScaled)
LEVELS = [lambda k: True, lambda k: k not in FP16_PARTIALS, lambda k: k in DETERMINISTIC_SAFE,
          lambda k: k in FP32_DETERMINISTIC]


def paired_rules_for(points):
    """points: [(bytes, {kernel: us})] sorted by bytes -> [(bytes_max or -1, kernel)], in preference order.

    Each run of layers gets, under one size bound, the fastest kernel of each level of LEVELS that differs from the
    ones before it: a Dispatcher whose options exclude the first takes the next it allows, for the same calls
    (choose_kernel skips a rule whose kernel is not allowed)."""
    def best_of(times, level, previous):
        candidates = {k: v for k, v in times.items() if level(k)}
        if not candidates:
            return None
        best = min(candidates, key=candidates.get)
        if previous in candidates and candidates[previous] <= (1 + TOLERANCE) * candidates[best]:
            best = previous
        return best
    runs = []  # [(kernel per level), last index]
    for i, (size, times) in enumerate(points):
        prev = runs[-1][0] if runs else (None,) * len(LEVELS)
        picks = tuple(best_of(times, level, p) for level, p in zip(LEVELS, prev))
        if runs and runs[-1][0] == picks:
            runs[-1][1] = i
        else:
            runs.append([picks, i])
    out = []
    for j, (picks, last) in enumerate(runs):
        bound = -1 if j + 1 == len(runs) else (points[last][0] + points[last + 1][0]) // 2
        emitted = []
        for kernel in picks:
            if kernel is not None and kernel not in emitted:
                out.append((bound, kernel))
                emitted.append(kernel)
    return out


def main():
    args = sys.argv[1:]
    excluded = set()
    if "--exclude" in args:
        i = args.index("--exclude")
        if i + 1 >= len(args):
            print(__doc__)
            return 2
        excluded = set(args[i + 1].split(","))
        del args[i:i + 2]
    prefill_from = None
    if "--prefill-from" in args:
        i = args.index("--prefill-from")
        if i + 1 >= len(args):
            print(__doc__)
            return 2
        prefill_from = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        print(__doc__)
        return 2
    directory, name, arch_major = args[0], args[1], int(args[2])
    with open(os.path.join(directory, "results.json")) as f:
        meta = json.load(f)
    with open(os.path.join(directory, "results.csv")) as f:
        rows = [r for r in csv.DictReader(f)
                if r.get("dtype", "fp16") == "fp16" and r["kernel"] in CHOICES and r["kernel"] not in excluded]
    points = {}  # (m, act_order) -> {(k, n): (bytes, {kernel: us})}
    for r in rows:
        key = (int(r["m"]), int(r["act_order"]))
        shape = (int(r["k"]), int(r["n"]))
        entry = points.setdefault(key, {}).setdefault(shape, (int(float(r["weight_bytes"])), {}))
        entry[1][r["kernel"]] = float(r["us_graph"])
    measured = {r["kernel"] for r in rows}
    if prefill_from is not None and PREFILL in measured:
        print(f"--prefill-from: the results have {PREFILL} rows: generate from them instead", file=sys.stderr)
        return 2
    ms = sorted({m for m, _ in points})
    if prefill_from is not None and prefill_from <= ms[-1]:
        print(f"--prefill-from {prefill_from}: must be above the largest measured M ({ms[-1]})", file=sys.stderr)
        return 2
    lines = []
    for m in ms:
        for act in (0, 1):
            if (m, act) not in points:
                continue
            ordered = sorted(points[(m, act)].values())
            for bytes_max, kernel in paired_rules_for(ordered):
                lines.append(f"    {{{m}, {bytes_max}, {act}, KernelChoice::{CHOICES[kernel]}}},")
    largest = sorted(points[(ms[-1], 0)].values())[-1][1]
    best = min(largest, key=largest.get)
    without_prefill = {k: v for k, v in largest.items() if k != PREFILL}
    fallback = CHOICES[min(without_prefill, key=without_prefill.get)]
    if best == PREFILL:
        lines.append(f"    // Above M = {ms[-1]}: the prefill path, as measured at M = {ms[-1]} on the largest layer; the")
        lines.append("    // fallback serves builds without cuBLAS.")
        lines.append(f"    {{kAnyM, -1, -1, KernelChoice::{CHOICES[PREFILL]}}},")
    provisional = ""
    if prefill_from is not None:
        lines.append(f"    // PROVISIONAL (not measured, --prefill-from {prefill_from}): M = {ms[-1] + 1} .. {prefill_from - 1} the fallback,")
        lines.append(f"    // M >= {prefill_from} the prefill path (dequantize + cuBLAS; builds without cuBLAS take the fallback).")
        lines.append("    // Measure DequantCublas with bench_gemm's prefill points and regenerate without --prefill-from.")
        lines.append(f"    {{{prefill_from - 1}, -1, -1, KernelChoice::{fallback}}},")
        lines.append(f"    {{kAnyM, -1, -1, KernelChoice::{CHOICES[PREFILL]}}},")
        provisional = (f"\n/// PROVISIONAL: the rules for M > {ms[-1]} are not measured (--prefill-from {prefill_from}): see the "
                       "rules.")
    invariant = "kTensorCoreDeterministic" if "TensorCoreDeterministic" in measured else "kDeterministicF32"
    source = os.path.normpath(directory)
    measured_on = f"{meta['device']}, driver {meta['driver_version']}, {meta['date']}, {source}"
    command = f"bench/make_dispatch_table.py {source} {name} {arch_major}" + (
        f" --prefill-from {prefill_from}" if prefill_from is not None else "") + (
        f" --exclude {','.join(sorted(excluded))}" if excluded else "")
    print(f"""#pragma once
/// @file
/// Dispatch table {name} (architecture major {arch_major}), generated by bench/make_dispatch_table.py from
/// {source} ({meta['device']}, {meta['date']}; {len(rows)} measured points, graph replay). Do not edit: measure
/// again (bench/run.sh) and regenerate:
///   {command}{provisional}
/// @ingroup host_api

#include "../dispatch_table.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace dispatch {{

/// @ingroup host_api
inline constexpr DispatchRule k{name}Rules[] = {{
{chr(10).join(lines)}
}};

/// @ingroup host_api
inline constexpr DispatchTable k{name} = {{"{measured_on}", {arch_major}, k{name}Rules,
                                          static_cast<int>(sizeof(k{name}Rules) / sizeof(DispatchRule)),
                                          KernelChoice::{fallback}, KernelChoice::{invariant}}};

}}  // namespace dispatch
OPT4GPTQ_NAMESPACE_END""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
