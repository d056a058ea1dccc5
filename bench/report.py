#!/usr/bin/env python3
"""Turns bench_gemm's results.csv / results.json into summary.md and PNG plots.

    bench/report.py RESULTS_DIR [--readme README.md]
    bench/report.py RESULTS_DIR --check-readme README.md

Writes RESULTS_DIR/summary.md, RESULTS_DIR/speedup_vs_m.png, RESULTS_DIR/roofline_m1.png,
RESULTS_DIR/pct_read_ref_m1_per_layer.png (% of the read reference per layer at M = 1 for the paper's presets,
Decode and TensorCorePipelined; its table is in the summary, and with --readme also between the README's markers,
so that the README's numbers are the CSV's; --check-readme only compares them, for the tests) and, when the run has the
dispatcher's `auto` rows, RESULTS_DIR/time_vs_m.png (time vs M, 1..4096, per layer: auto, the paper's presets and
cuBLAS fp16) with the dispatcher's section of the summary (plots need matplotlib; without it the summary says so and
the tables are still written).

Times come from the columns us_b2b / us_graph (the kernel), read_ref_us_b2b / read_ref_us (the read reference) and
cublas_us_b2b / cublas_us (the dense GEMM): back to back / graph replay. Files written before those columns existed
(when read_ref_us was the back-to-back time) are read too.

Rows have a `dtype` (fp16 when the file has no such column: runs before bf16). Every section above reads the fp16 rows
only (its kernels are named by their fp16 presets). When the run has bf16 rows (bench_gemm --dtype bf16 or both:
kernels named Bf16*), the summary gets a bf16 section: per M, each bf16 kernel's % of the read reference beside its
fp16 counterpart's, bf16 time / fp16 time (the issue's target: within 5%), bf16 against cuBLAS bf16, Bf16Auto against
the fastest bf16 kernel, and RESULTS_DIR/bf16_vs_fp16.png.
"""
import csv
import json
import math
import os
import sys
from collections import defaultdict

PAPER_PRESETS = ["SMB", "VML", "ILA", "Opt4GPTQ"]
# rows that are not one of the library's kernels (cuBLAS is a column, not a row)
NOT_LIBRARY_KERNELS = {"auto", "Bf16Auto"}
PREFILL_TARGETS = {"all": 0.95, "m_le_512": 1.0}  # dense cuBLAS time / prefill time, geomean over the peers' shapes
SHIPPED = ["Baseline", "SMB", "VML", "ILA", "Opt4GPTQ", "Deterministic"]
LAYERS = ["qkv", "o", "gate_up", "down"]


def load(directory):
    with open(os.path.join(directory, "results.json")) as f:
        meta = json.load(f)
    with open(os.path.join(directory, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if "read_ref_us_b2b" not in r:  # older file: read_ref_us was back to back, no us_b2b / cublas_* columns
            r["us_b2b"] = r["us"]
            r["read_ref_us_b2b"] = r["read_ref_us"]
            r["read_ref_us"] = r["read_ref_us_graph"]
            r["cublas_us_b2b"] = r["dense_us"]
            r["cublas_us"] = r["dense_us_graph"]
        r["dtype"] = r.get("dtype") or "fp16"  # files from before bf16 have fp16 rows only
        for key in ("k", "n", "m", "act_order", "launches", "k_blocks"):
            r[key] = int(r[key])
        for key in ("us_b2b", "us_graph", "us_event", "weight_bytes", "pct_copy_bw", "pct_copy_bw_graph", "read_ref_us",
                    "read_ref_us_graph", "read_ref_us_b2b", "cublas_us", "cublas_us_b2b", "tflops", "rel_error"):
            r[key] = float(r[key])
    return meta, rows


def fmt(x, digits=1):
    return f"{x:.{digits}f}"


TENSOR_CORE_TARGETS = {8: 60, 16: 55, 32: 40, 64: 27, 128: 20}  # % of the read reference, geomean (graph replay)


# The 16 shapes of ../shared/PEERS.md's H200 table (K x N, no act-order): geomeans over them compare with the peers'.
PEER_SHAPES = {(11008, 4096), (13824, 5120), (14336, 4096), (2048, 6144), (2560, 7680), (4096, 12288), (4096, 22016),
               (4096, 28672), (4096, 4096), (4096, 6144), (5120, 15360), (5120, 27648), (5120, 5120), (5504, 2048),
               (6912, 2560), (8192, 28672)}


def unique_shapes(rows):
    """One row per (K, N, act-order) and kernel and M: shapes repeated across models count once."""
    seen = {}
    for r in rows:
        seen.setdefault((r["k"], r["n"], r["act_order"], r["kernel"], r["m"]), r)
    return list(seen.values())


def tensor_core_targets(w, rows, kernels, ms, directory, meta):
    """Geomean over the shapes of read-reference time / kernel time per kernel and M (graph replay and b2b): over the
    peers' 16 shapes when the run has them all (then also over every distinct shape), else over every distinct shape."""
    uniq_all = unique_shapes(rows)
    peer = [r for r in uniq_all if (r["k"], r["n"]) in PEER_SHAPES and not r["act_order"]]
    if len({(r["k"], r["n"]) for r in peer}) == len(PEER_SHAPES):
        w("Over every distinct shape of the run (act-order layers included):")
        w("")
        tensor_core_table(w, uniq_all, kernels, ms, directory, meta, plot=False, title="every distinct shape")
        uniq = peer
        title = "the 16 shapes of PEERS.md (no act-order)"
    else:
        uniq = uniq_all
        title = "every distinct shape"
    tensor_core_table(w, uniq, kernels, ms, directory, meta, plot=True, title=title)


def tensor_core_table(w, uniq, kernels, ms, directory, meta, plot, title):
    shapes = sorted({(r["k"], r["n"], r["act_order"]) for r in uniq})
    def pct(kernel, m, col, ref_col):
        vals = [r[ref_col] / r[col] for r in uniq if r["kernel"] == kernel and r["m"] == m and r[col] > 0]
        if len(vals) != len(shapes):
            return None
        return 100 * math.exp(sum(math.log(v) for v in vals) / len(vals))
    def dense_kernel(m):
        """A kernel with a row at M on every shape (every row carries cuBLAS's time): the first one, else kernels[0]."""
        return next((k for k in kernels if pct(k, m, "us_graph", "read_ref_us") is not None), kernels[0])
    w(f"## % of the read reference, geomean over {title} ({len(shapes)} shapes; graph replay / back to back)")
    w("")
    w("| kernel | " + " | ".join(f"M = {m}" for m in ms) + " |")
    w("|" + "---|" * (1 + len(ms)))
    for k in kernels + ["cuBLAS fp16"]:
        cells = []
        for m in ms:
            if k == "cuBLAS fp16":
                kk = dense_kernel(m)
                g = pct(kk, m, "cublas_us", "read_ref_us")
                b = pct(kk, m, "cublas_us_b2b", "read_ref_us_b2b")
            else:
                g = pct(k, m, "us_graph", "read_ref_us")
                b = pct(k, m, "us_b2b", "read_ref_us_b2b")
            cells.append("-" if g is None else f"{g:.1f} / {b:.1f}")
        w(f"| {k} | " + " | ".join(cells) + " |")
    w("")
    tc = [k for k in kernels if k.startswith("TensorCore")]
    if tc:
        w("Tensor-core targets (best tensor-core preset, graph replay): " + ", ".join(
            f"M = {m} >= {t}%: " + (lambda best: "-" if best is None else f"**{best:.1f}% {'met' if best >= t else 'missed'}**")(
                max([v for v in (pct(k, m, "us_graph", "read_ref_us") for k in tc) if v is not None], default=None))
            for m, t in TENSOR_CORE_TARGETS.items() if m in ms) + ".")
        w("")
        if 1 in ms and 16 in ms:
            w("Layers of >= 20 MB: M = 16 time / M = 1 time of the same kernel (target <= 1.15):")
            w("")
            w("| layer (K x N) | MB | " + " | ".join(tc) + " |")
            w("|---|---|" + "---|" * len(tc))
            for (k_, n_, a_) in shapes:
                one = {r["kernel"]: r for r in uniq if (r["k"], r["n"], r["act_order"]) == (k_, n_, a_) and r["m"] == 1}
                six = {r["kernel"]: r for r in uniq if (r["k"], r["n"], r["act_order"]) == (k_, n_, a_) and r["m"] == 16}
                any_row = next(iter(one.values()), None)
                if any_row is None or any_row["weight_bytes"] < 20e6:
                    continue
                cells = [f"{six[k]['us_graph'] / one[k]['us_graph']:.2f}" if k in one and k in six else "-" for k in tc]
                w(f"| {k_}x{n_}{' act-order' if a_ else ''} | {any_row['weight_bytes'] / 1e6:.0f} | " + " | ".join(cells) + " |")
            w("")
    if not plot:
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in kernels + ["cuBLAS fp16"]:
        xs, ys = [], []
        for m in ms:
            v = (pct(dense_kernel(m), m, "cublas_us", "read_ref_us") if k == "cuBLAS fp16"
                 else pct(k, m, "us_graph", "read_ref_us"))
            if v is not None:
                xs.append(m)
                ys.append(v)
        ax.plot(xs, ys, marker="o", label=k, ls="--" if k == "cuBLAS fp16" else "-")
    tx = [m for m in TENSOR_CORE_TARGETS if m in ms]
    ax.scatter(tx, [TENSOR_CORE_TARGETS[m] for m in tx], marker="x", color="red", label="tensor-core targets", zorder=5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (tokens)")
    ax.set_ylabel(f"% of the read reference (geomean over {len(shapes)} shapes, graph)")
    ax.set_title(f"Time vs the read-only floor ({meta['device']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "pct_read_ref_vs_m.png"), dpi=110)
    plt.close(fig)
    w("![% of the read reference vs M](pct_read_ref_vs_m.png)")
    w("")


# Per layer at M = 1: the paper's presets (whichever the run has) and the decode-era paths, in this order.
M1_PER_LAYER = ["Baseline"] + PAPER_PRESETS + ["Decode", "TensorCorePipelined"]
M1_PLOT = "pct_read_ref_m1_per_layer.png"
# Issue 10's M = 1 targets per layer (% of the read reference, graph replay): layers of >= 40 MB of int4 and < 15 MB.
M1_LAYER_TARGETS = ((40e6, None, 90), (None, 15e6, 55))
README_BEGIN = "<!-- per-layer M = 1 table: written by bench/report.py RESULTS_DIR --readme README.md; do not edit -->"
README_END = "<!-- end of the per-layer M = 1 table -->"


def m1_target(weight_bytes):
    for low, high, pct in M1_LAYER_TARGETS:
        if (low is None or weight_bytes >= low) and (high is None or weight_bytes < high):
            return pct
    return None


def per_layer_m1(rows, directory, meta, link_dir="", draw=True):
    """Markdown lines: % of the read reference per layer at M = 1 (graph replay: read_ref_us_graph / us_graph), for the
    paper's presets and the new paths, over the peers' 16 shapes when the run has them all (else every distinct shape),
    smallest layer first, with the geomean; and the plot M1_PLOT beside the results (when matplotlib is there).
    `link_dir` is the results folder as seen from the file the lines go into (the plot's link). With draw=False the
    plot is not drawn, and linked when it is there."""
    uniq = [r for r in unique_shapes(rows) if r["m"] == 1]
    peer = [r for r in uniq if (r["k"], r["n"]) in PEER_SHAPES and not r["act_order"]]
    if len({(r["k"], r["n"]) for r in peer}) == len(PEER_SHAPES):
        uniq, title = peer, "the 16 shapes of PEERS.md"
    else:
        title = "every distinct shape"
    kernels = [k for k in M1_PER_LAYER if any(r["kernel"] == k for r in uniq)]
    if not kernels:
        return []
    by_shape = defaultdict(dict)  # (k, n, act) -> kernel -> row
    for r in uniq:
        by_shape[(r["k"], r["n"], r["act_order"])][r["kernel"]] = r
    shapes = sorted(by_shape, key=lambda s: next(iter(by_shape[s].values()))["weight_bytes"])
    # The same model/layer name the run gives a shape first (shapes shared by models are measured once per model).
    first_name = {}
    for r in rows:
        first_name.setdefault((r["k"], r["n"], r["act_order"]), f"{r['model']} {r['layer']}")

    def pct(shape, kernel):
        r = by_shape[shape].get(kernel)
        return 100 * r["read_ref_us_graph"] / r["us_graph"] if r and r["us_graph"] > 0 else None

    out = [f"% of the read reference per layer at M = 1 (graph replay: read-reference time / kernel time, same run; "
           f"{meta['device']}, {meta['date']}; {title}, smallest first; the best of each row in bold). Issue 10's "
           "targets: >= 90% on layers of >= 40 MB, >= 55% on layers of < 15 MB, geomean >= 70%.",
           "",
           "| layer | K x N | MB | read ref µs | " + " | ".join(kernels) + " |",
           "|" + "---|" * (4 + len(kernels))]
    for shape in shapes:
        values = {k: pct(shape, k) for k in kernels}
        best = max((v for v in values.values() if v is not None), default=None)
        any_row = next(iter(by_shape[shape].values()))
        cells = ["-" if v is None else (f"**{v:.1f}**" if v == best else f"{v:.1f}") for v in values.values()]
        out.append(f"| {first_name[shape]} | {shape[0]}x{shape[1]}{' act-order' if shape[2] else ''} | "
                   f"{any_row['weight_bytes'] / 1e6:.1f} | {any_row['read_ref_us_graph']:.1f} | " + " | ".join(cells) + " |")
    means = []
    for k in kernels:
        vals = [pct(s, k) for s in shapes]
        means.append("-" if None in vals else f"{geomean(vals):.1f}")
    out.append("| **geomean** | | | | " + " | ".join(means) + " |")
    out.append("")
    # Which kernel is the fastest where, and the layers on which any kernel meets its target.
    fastest = defaultdict(int)
    met = 0
    targeted = 0
    for shape in shapes:
        values = {k: v for k in kernels if (v := pct(shape, k)) is not None}
        if values:
            fastest[max(values, key=values.get)] += 1
        target = m1_target(next(iter(by_shape[shape].values()))["weight_bytes"])
        if target is not None:
            targeted += 1
            met += any(v >= target for v in values.values())
    out.append("Fastest per layer: " + ", ".join(f"{k} on {fastest[k]}" for k in kernels if fastest[k]) +
               f" of {len(shapes)}. Layers with a per-layer target that some kernel meets: {met} of {targeted}.")
    out.append("")
    link = [f"![% of the read reference per layer at M = 1]({os.path.join(link_dir, M1_PLOT) if link_dir else M1_PLOT})",
            ""]
    if not draw:
        return out + (link if os.path.exists(os.path.join(directory, M1_PLOT)) else [])
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        out += [f"(matplotlib not available: {M1_PLOT} not drawn)", ""]
        return out
    fig, ax = plt.subplots(figsize=(max(9, 0.75 * len(shapes)), 4.8))
    width = 0.8 / len(kernels)
    for j, k in enumerate(kernels):
        xs = [i + j * width for i, s in enumerate(shapes) if pct(s, k) is not None]
        ax.bar(xs, [pct(s, k) for s in shapes if pct(s, k) is not None], width, label=k)
    targets = [(i, m1_target(next(iter(by_shape[s].values()))["weight_bytes"])) for i, s in enumerate(shapes)]
    targets = [(i, t) for i, t in targets if t is not None]
    if targets:
        ax.scatter([i + 0.4 - width / 2 for i, _ in targets], [t for _, t in targets], marker="_", s=400, color="red",
                   zorder=5, label="issue 10 target")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(shapes))])
    ax.set_xticklabels([f"{s[0]}x{s[1]}{'*' if s[2] else ''}\n{next(iter(by_shape[s].values()))['weight_bytes'] / 1e6:.0f} MB"
                        for s in shapes], fontsize=6.5, rotation=60)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of the read reference (graph replay)")
    ax.set_title(f"M = 1, per layer: read-only floor / kernel time ({meta['device']})", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, M1_PLOT), dpi=110)
    plt.close(fig)
    return out + link


def readme_block(readme, lines):
    """(README text, the same text with `lines` between README_BEGIN and README_END)."""
    with open(readme) as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{readme}: the markers of the per-layer M = 1 table are missing:\n{README_BEGIN}\n{README_END}")
    return text, text[:begin + len(README_BEGIN)] + "\n" + "\n".join(lines) + "\n" + text[end:]


def readme_lines(rows, directory, meta, readme):
    return per_layer_m1(rows, directory, meta, os.path.relpath(directory, os.path.dirname(os.path.abspath(readme))),
                        draw=False)


def update_readme(readme, lines):
    """Replaces the lines between README_BEGIN and README_END in `readme` by `lines` (the markers stay)."""
    _, text = readme_block(readme, lines)
    with open(readme, "w") as f:
        f.write(text)
    print(f"wrote the per-layer M = 1 table into {readme}")


def check_readme(readme, lines):
    """0 when the README's table is what the results give (a test: nobody edited it by hand, nobody forgot it)."""
    old, new = readme_block(readme, lines)
    if old == new:
        print(f"{readme}: the per-layer M = 1 table matches the results")
        return 0
    import difflib
    sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), readme, "from the results"))
    print(f"{readme}: the per-layer M = 1 table differs from the results: run bench/report.py RESULTS_DIR --readme "
          f"{readme}")
    return 1


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def dispatcher_section(w, rows, directory, meta):
    """The dispatcher (`auto` rows): its time against the fastest library kernel measured at each point (the issue's
    target: within 5% everywhere; the worst point reported), the prefill path against dense cuBLAS, and one plot of
    time vs M per layer."""
    uniq = unique_shapes(rows)
    points = defaultdict(dict)  # (k, n, act, m) -> kernel -> row
    for r in uniq:
        points[(r["k"], r["n"], r["act_order"], r["m"])][r["kernel"]] = r
    ms = sorted({r["m"] for r in uniq})
    w("## The dispatcher (`auto`: a Dispatcher with the default, overflow-safe options)")
    w("")
    w("auto's time / the fastest library kernel measured at the same point (graph replay; every kernel of the run but "
      "auto, the prefill path included). The issue's target: <= 1.05 at every point. `dispatched` is the kernel auto "
      "ran.")
    w("")
    w("| M | points | geomean | worst | worst point (auto ran -> fastest) |")
    w("|---|---|---|---|---|")
    worst_all = (0.0, None)
    for m in ms:
        ratios = []
        worst = (0.0, None)
        for key, by_kernel in points.items():
            if key[3] != m or "auto" not in by_kernel:
                continue
            others = {k: r for k, r in by_kernel.items() if k not in NOT_LIBRARY_KERNELS and r["us_graph"] > 0}
            if not others:
                continue
            best = min(others, key=lambda k: others[k]["us_graph"])
            ratio = by_kernel["auto"]["us_graph"] / others[best]["us_graph"]
            ratios.append(ratio)
            label = f"{key[0]}x{key[1]}{' act-order' if key[2] else ''}: {by_kernel['auto'].get('dispatched', '?')} -> {best}"
            if ratio > worst[0]:
                worst = (ratio, label)
            if ratio > worst_all[0]:
                worst_all = (ratio, f"M = {m}, {label}")
        if ratios:
            w(f"| {m} | {len(ratios)} | {geomean(ratios):.3f} | {worst[0]:.3f} | {worst[1]} |")
    w("")
    if worst_all[1]:
        w(f"Worst point: **{worst_all[0]:.3f}x** ({worst_all[1]}); target <= 1.05: "
          f"**{'met' if worst_all[0] <= 1.05 else 'missed'}**.")
        w("")
    # The prefill path against dense fp16 cuBLAS on the dequantized weight, over the peers' 16 shapes.
    prefill = [r for r in uniq if r["kernel"] == "DequantCublas" and r["m"] >= 256 and not r["act_order"]
               and (r["k"], r["n"]) in PEER_SHAPES and r["cublas_us"] > 0]
    if prefill:
        w("Prefill path (DequantCublas) vs dense fp16 cuBLAS, cuBLAS time / DequantCublas time (graph replay), geomean "
          f"over the peers' shapes (targets: >= {PREFILL_TARGETS['all']} over M = 256..4096, "
          f">= {PREFILL_TARGETS['m_le_512']} at M <= 512):")
        w("")
        w("| M | shapes | geomean | worst |")
        w("|---|---|---|---|")
        for m in sorted({r["m"] for r in prefill}):
            vals = [r["cublas_us"] / r["us_graph"] for r in prefill if r["m"] == m]
            w(f"| {m} | {len(vals)} | {geomean(vals):.3f} | {min(vals):.3f} |")
        everything = [r["cublas_us"] / r["us_graph"] for r in prefill]
        small = [r["cublas_us"] / r["us_graph"] for r in prefill if r["m"] <= 512]
        w("")
        w(f"Over M = 256..4096: **{geomean(everything):.3f}** "
          f"({'met' if geomean(everything) >= PREFILL_TARGETS['all'] else 'missed'}); at M <= 512: "
          f"**{geomean(small):.3f}** ({'met' if small and geomean(small) >= PREFILL_TARGETS['m_le_512'] else 'missed'}).")
        w("")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        w("(matplotlib not available: time_vs_m.png not drawn)")
        w("")
        return
    shapes = sorted({(r["k"], r["n"], r["act_order"]) for r in uniq},
                    key=lambda s: next(r["weight_bytes"] for r in uniq if (r["k"], r["n"], r["act_order"]) == s))
    cols = 4
    rows_n = math.ceil(len(shapes) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False)
    lines = ["auto", "Baseline"] + PAPER_PRESETS + ["cuBLAS fp16"]
    for i, (k, n, act) in enumerate(shapes):
        ax = axes[i // cols][i % cols]
        here = [r for r in uniq if (r["k"], r["n"], r["act_order"]) == (k, n, act)]
        for name in lines:
            if name == "cuBLAS fp16":
                by_m = {r["m"]: r["cublas_us"] for r in here if r["kernel"] == "auto" and r["cublas_us"] > 0}
            else:
                by_m = {r["m"]: r["us_graph"] for r in here if r["kernel"] == name}
            if not by_m:
                continue
            xs = sorted(by_m)
            style = "--" if name == "cuBLAS fp16" else "-"
            ax.plot(xs, [by_m[x] for x in xs], style, marker="o", ms=3, lw=2.2 if name == "auto" else 1.0, label=name)
        mb = next(r["weight_bytes"] for r in here) / 1e6
        ax.set_title(f"{k}x{n}{' act-order' if act else ''} ({mb:.0f} MB)", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("M (tokens)", fontsize=7)
        ax.set_ylabel("us per call (graph)", fontsize=7)
    for j in range(len(shapes), rows_n * cols):
        axes[j // cols][j % cols].axis("off")
    axes[0][0].legend(fontsize=6)
    fig.suptitle(f"Time vs M: the dispatcher, the paper's presets and cuBLAS fp16 ({meta['device']})")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(os.path.join(directory, "time_vs_m.png"), dpi=100)
    plt.close(fig)
    w("![time vs M per layer](time_vs_m.png)")
    w("")

# Each bf16 kernel's fp16 counterpart, the first of the list that the run measured: the same structure in fp16
# (host/dispatch_kernels.hpp pairs them so: Bf16Deterministic is DeterministicF32's bf16 build, which bench_gemm runs
# only when --kernels names it; Deterministic, the same kernel with fp16-chain products, stands in for it otherwise).
# Bf16Simt has no fp16 build of its own: Opt4GPTQ is the nearest preset (the same in-block reduction and atomics across
# K blocks; half2 loads and fp16-chain products).
BF16_TWINS = [("Bf16Decode", ["Decode"]), ("Bf16Deterministic", ["DeterministicF32", "Deterministic"]),
              ("Bf16Simt", ["Opt4GPTQ"]), ("Bf16TensorCore", ["TensorCore"]),
              ("Bf16TensorCoreDeterministic", ["TensorCoreDeterministic"]),
              ("Bf16TensorCorePipelined", ["TensorCorePipelined"]),
              ("Bf16TensorCorePipelinedDeterministic", ["TensorCorePipelinedDeterministic"]),
              ("Bf16DequantCublas", ["DequantCublas"]), ("Bf16Auto", ["auto"])]
BF16_TARGET = 1.05  # the issue: bf16 within 5% of the fp16 figures (bf16 time / fp16 time of the counterpart)
BF16_PLOT = "bf16_vs_fp16.png"


def bf16_section(w, fp16_rows, bf16_rows, directory, meta):
    """bf16 rows against their fp16 counterparts of the same run (same shapes and M): % of the read reference of both,
    bf16 time / fp16 time (the issue's target: <= 1.05), bf16 against cuBLAS bf16, and Bf16Auto against the fastest bf16
    kernel. Geomeans over the peers' 16 shapes when the bf16 rows have them all, else over every distinct shape of the
    bf16 rows; a kernel's cell at an M only when it (and, for a comparison, its counterpart) has every one of them."""
    uniq16, uniqbf = unique_shapes(fp16_rows), unique_shapes(bf16_rows)
    every = sorted({(r["k"], r["n"], r["act_order"]) for r in uniqbf})
    peer = [s for s in every if (s[0], s[1]) in PEER_SHAPES and not s[2]]
    if len(peer) == len(PEER_SHAPES):
        shapes, title = peer, "the 16 shapes of PEERS.md (no act-order)"
    else:
        shapes, title = every, f"every distinct shape of the bf16 rows ({len(every)})"
    ms = sorted({r["m"] for r in uniqbf})
    key = lambda r: (r["k"], r["n"], r["act_order"], r["m"], r["kernel"])  # noqa: E731
    by16, bybf = {key(r): r for r in uniq16}, {key(r): r for r in uniqbf}
    measured16 = {r["kernel"] for r in uniq16}
    measuredbf = []
    for r in bf16_rows:
        if r["kernel"] not in measuredbf:
            measuredbf.append(r["kernel"])
    order = [k for k, _ in BF16_TWINS if k in measuredbf] + [k for k in measuredbf if k not in dict(BF16_TWINS)]
    twin = {k: next((t for t in dict(BF16_TWINS).get(k, []) if t in measured16), None) for k in order}
    # The dense GEMM's times per shape and M, of either type (every row of a point carries them).
    dense = {"bf16": {}, "fp16": {}}
    for r in uniqbf + uniq16:
        if r["cublas_us"] > 0:
            dense[r["dtype"]].setdefault((r["k"], r["n"], r["act_order"], r["m"]), r)

    def rows_of(table, kernel, m):
        """The kernel's row at M for every shape, or None when one is missing."""
        got = [table.get(s + (m, kernel)) for s in shapes]
        return None if any(r is None or r["us_graph"] <= 0 for r in got) else got

    def dense_rows(dtype, m):
        got = [dense[dtype].get(s + (m,)) for s in shapes]
        return None if any(r is None for r in got) else got

    def pct(rs, col="us_graph"):
        return None if rs is None else 100 * geomean([r["read_ref_us"] / r[col] for r in rs])

    def cell(v, digits=1):
        return "-" if v is None else f"{v:.{digits}f}"

    w("## bf16 activations and outputs")
    w("")
    w("bf16 rows (bench_gemm --dtype): the Bf16 presets, the prefill path in bf16 (Bf16DequantCublas: dequantize to "
      "bf16 + cuBLAS bf16) and Bf16Auto (a Dispatcher created for bf16 calls, default options), on the same layers "
      "and M as the fp16 rows of the run. Read reference: the same weight bytes; dense yardstick: cuBLAS bf16 (bf16 A, "
      f"W and C, fp32 compute). Geomean over {title}, graph replay. Counterparts: "
      + ", ".join(f"{k} - {twin[k] or 'none measured'}" for k in order) + ".")
    w("")
    w("% of the read reference, bf16 / fp16 counterpart:")
    w("")
    w("| bf16 kernel (fp16) | " + " | ".join(f"M = {m}" for m in ms) + " |")
    w("|" + "---|" * (1 + len(ms)))
    for k in order:
        cells = []
        for m in ms:
            bf = rows_of(bybf, k, m)
            fp = rows_of(by16, twin[k], m) if twin[k] else None
            cells.append("-" if bf is None else f"{cell(pct(bf))} / {cell(pct(fp))}")
        w(f"| {k} ({twin[k] or '-'}) | " + " | ".join(cells) + " |")
    cells = []
    for m in ms:
        bf, fp = dense_rows("bf16", m), dense_rows("fp16", m)
        cells.append("-" if bf is None else f"{cell(pct(bf, 'cublas_us'))} / {cell(pct(fp, 'cublas_us'))}")
    w("| cuBLAS bf16 (cuBLAS fp16) | " + " | ".join(cells) + " |")
    w("")

    # bf16 time / fp16 time, per shape paired, then the geomean; the worst single point beside.
    ratios = {}  # (kernel, m) -> geomean
    worst = (0.0, None)
    for k in order:
        if not twin[k]:
            continue
        for m in ms:
            bf, fp = rows_of(bybf, k, m), rows_of(by16, twin[k], m)
            if bf is None or fp is None:
                continue
            per_shape = [b["us_graph"] / f["us_graph"] for b, f in zip(bf, fp)]
            ratios[(k, m)] = geomean(per_shape)
            i = max(range(len(per_shape)), key=per_shape.__getitem__)
            if per_shape[i] > worst[0]:
                s = shapes[i]
                worst = (per_shape[i], f"{k} vs {twin[k]}, M = {m}, {s[0]}x{s[1]}{' act-order' if s[2] else ''}: "
                                       f"{bf[i]['us_graph']:.1f} vs {fp[i]['us_graph']:.1f} µs")
    if not fp16_rows:
        w("No fp16 rows in this run: bf16 / fp16 ratios need both types in one run (bench_gemm --dtype both).")
        w("")
    else:
        w(f"bf16 time / fp16 counterpart's time (graph replay; geomean of the per-shape ratios; the issue's target: <= "
          f"{BF16_TARGET}, in bold where missed):")
        w("")
        w("| bf16 kernel (fp16) | " + " | ".join(f"M = {m}" for m in ms) + " |")
        w("|" + "---|" * (1 + len(ms)))
        for k in order:
            if not twin[k]:
                continue
            cells = []
            for m in ms:
                v = ratios.get((k, m))
                cells.append("-" if v is None else (f"**{v:.3f}**" if v > BF16_TARGET else f"{v:.3f}"))
            w(f"| {k} ({twin[k]}) | " + " | ".join(cells) + " |")
        cells = []
        for m in ms:
            bf, fp = dense_rows("bf16", m), dense_rows("fp16", m)
            cells.append("-" if bf is None or fp is None else
                         f"{geomean([b['cublas_us'] / f['cublas_us'] for b, f in zip(bf, fp)]):.3f}")
        w("| cuBLAS bf16 (cuBLAS fp16) | " + " | ".join(cells) + " |")
        w("")
        if ratios:
            missed = sorted(((v, k, m) for (k, m), v in ratios.items() if v > BF16_TARGET), reverse=True)
            listed = ", ".join(f"{k} at M = {m} ({v:.3f})" for v, k, m in missed[:8])
            if len(missed) > 8:
                listed += f" and {len(missed) - 8} more"
            w(f"Within {100 * (BF16_TARGET - 1):.0f}% of fp16 (geomean): **{len(ratios) - len(missed)} of "
              f"{len(ratios)}** kernel and M cells{': missed by ' + listed if missed else ''}. Worst single point: "
              f"{worst[0]:.3f} ({worst[1]}).")
            w("")

    w("bf16 kernel against the dense bf16 GEMM of the same shape: cuBLAS bf16 time / kernel time (graph replay; > 1: "
      "faster than cuBLAS bf16):")
    w("")
    w("| bf16 kernel | " + " | ".join(f"M = {m}" for m in ms) + " |")
    w("|" + "---|" * (1 + len(ms)))
    for k in order:
        cells = []
        for m in ms:
            bf = rows_of(bybf, k, m)
            ok = bf is not None and all(r["cublas_us"] > 0 for r in bf)
            cells.append(f"{geomean([r['cublas_us'] / r['us_graph'] for r in bf]):.2f}" if ok else "-")
        w(f"| {k} | " + " | ".join(cells) + " |")
    w("")

    if "Bf16Auto" in measuredbf:
        w("Bf16Auto / the fastest bf16 kernel measured at the same point (graph replay; every bf16 kernel of the run, "
          "the prefill path included; over every distinct shape; `dispatched` is the kernel Bf16Auto ran):")
        w("")
        w("| M | points | geomean | worst | worst point (Bf16Auto ran -> fastest) |")
        w("|---|---|---|---|---|")
        points = defaultdict(dict)
        for r in uniqbf:
            points[(r["k"], r["n"], r["act_order"], r["m"])][r["kernel"]] = r
        for m in ms:
            vals, worst_m = [], (0.0, None)
            for p, by_kernel in sorted(points.items()):
                others = {k: r for k, r in by_kernel.items() if k not in NOT_LIBRARY_KERNELS and r["us_graph"] > 0}
                if p[3] != m or "Bf16Auto" not in by_kernel or not others:
                    continue
                best = min(others, key=lambda k: others[k]["us_graph"])
                v = by_kernel["Bf16Auto"]["us_graph"] / others[best]["us_graph"]
                vals.append(v)
                if v > worst_m[0]:
                    worst_m = (v, f"{p[0]}x{p[1]}{' act-order' if p[2] else ''}: "
                                  f"{by_kernel['Bf16Auto'].get('dispatched', '?')} -> {best}")
            if vals:
                w(f"| {m} | {len(vals)} | {geomean(vals):.3f} | {worst_m[0]:.3f} | {worst_m[1]} |")
        w("")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        w(f"(matplotlib not available: {BF16_PLOT} not drawn)")
        w("")
        return
    if not ratios:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in order:
        xs = [m for m in ms if (k, m) in ratios]
        if xs:
            ax.plot(xs, [ratios[(k, m)] for m in xs], marker="o", label=f"{k} / {twin[k]}")
    ax.axhline(BF16_TARGET, color="red", lw=0.8, ls="--", label=f"target <= {BF16_TARGET}")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (tokens)")
    ax.set_ylabel(f"bf16 time / fp16 time (geomean over {len(shapes)} shapes, graph)")
    ax.set_title(f"bf16 against fp16, same kernels and run ({meta['device']})")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, BF16_PLOT), dpi=110)
    plt.close(fig)
    w(f"![bf16 time / fp16 time vs M]({BF16_PLOT})")
    w("")


def main():
    args = sys.argv[1:]
    options = {}
    for flag in ("--readme", "--check-readme"):
        if flag in args:
            at = args.index(flag)
            if at + 1 >= len(args):
                print(__doc__)
                return 2
            options[flag] = args[at + 1]
            del args[at:at + 2]
    if len(args) != 1:
        print(__doc__)
        return 2
    directory = args[0]
    readme = options.get("--readme")
    meta, all_rows = load(directory)
    # The fp16 rows feed every section but the bf16 one (their tables name kernels by their fp16 presets; the bf16 rows'
    # names start with Bf16 and their dense yardstick is cuBLAS bf16).
    rows = [r for r in all_rows if r["dtype"] == "fp16"]
    bf16_rows = [r for r in all_rows if r["dtype"] == "bf16"]
    if "--check-readme" in options:  # writes nothing
        return check_readme(options["--check-readme"], readme_lines(rows, directory, meta, options["--check-readme"]))
    kernels = []
    for r in rows:
        if r["kernel"] not in kernels:
            kernels.append(r["kernel"])
    t = {(r["model"], r["layer"], r["m"], r["kernel"]): r for r in rows}
    models = []
    for r in rows:
        if r["model"] not in models:
            models.append(r["model"])
    ms = sorted({r["m"] for r in rows})
    out = []
    w = out.append
    w(f"# opt4gptq benchmark: {meta['device']}")
    w("")
    w(f"Backend {meta['backend']}, driver {meta['driver_version']}, {meta['date']}; group size {meta['group_size']}; "
      f"median of {meta['reps']} repetitions; weights rotated over more than {meta.get('rotate_l2_factor', 2.5)}x the {meta['l2_bytes'] >> 20} MB L2. "
      f"Device-to-device copy bandwidth measured in the same run: **{meta['copy_gbps']:.0f} GB/s** (read + write). "
      + (f"Dense GEMM of each row's type (fp16 or bf16): {meta['dense_library']}." if bf16_rows else
         f"Dense fp16 GEMM: {meta['dense_library']}."))
    w("")
    w("Times are µs per call: *b2b* = back-to-back launches (what an engine that queues kernels sees), *graph* = replay "
      "of a captured CUDA/HIP graph (what an engine that replays graphs sees; launch gaps shrink). % BW = int4 weight + "
      "scale + zero bytes / time, over the copy bandwidth. *read-ref* = a read-only kernel streaming the same bytes, the "
      "practical floor. Every result was checked against an fp64 reference first.")
    w("")

    if kernels:
        tensor_core_targets(w, rows, kernels, ms, directory, meta)
    if 1 in ms:
        m1 = per_layer_m1(rows, directory, meta)
        if m1:
            w("## Every layer at M = 1: % of the read reference")
            w("")
            out.extend(m1)
            if readme:
                update_readme(readme, readme_lines(rows, directory, meta, readme))
    if "auto" in kernels:
        dispatcher_section(w, rows, directory, meta)
    if bf16_rows:
        bf16_section(w, rows, bf16_rows, directory, meta)
    if "Baseline" not in kernels or "Opt4GPTQ" not in kernels:
        with open(os.path.join(directory, "summary.md"), "w") as f:
            f.write("\n".join(out) + "\n")
        print(f"wrote {os.path.join(directory, 'summary.md')} (no Baseline / Opt4GPTQ rows: tensor-core"
              f"{', dispatcher' if 'auto' in kernels else ''}{' and bf16' if bf16_rows else ''} sections only)")
        return 0

    # ---- targets ------------------------------------------------------------------------------------------------
    w("## Targets for the Opt4GPTQ preset")
    w("")
    slower = []
    for (model, layer, m, kernel), r in t.items():
        if kernel != "Opt4GPTQ" or m > 32:
            continue
        base = t[(model, layer, m, "Baseline")]
        if r["us_b2b"] > base["us_b2b"]:
            slower.append((r["us_b2b"] / base["us_b2b"], model, layer, m, r["us_b2b"], base["us_b2b"]))
    slower.sort(reverse=True)
    n_points = sum(1 for (mo, la, m, k) in t if k == "Opt4GPTQ" and m <= 32)
    w(f"1. Never slower than Baseline at M <= 32 (back to back): **{'met' if not slower else 'missed'}** "
      f"({len(slower)} of {n_points} points slower).")
    if slower:
        w("")
        w("   | slower by | model | layer | M | Opt4GPTQ µs | Baseline µs |")
        w("   |---|---|---|---|---|---|")
        for ratio, model, layer, m, us, base in slower[:12]:
            w(f"   | {100 * (ratio - 1):.0f}% | {model} | {layer} | {m} | {fmt(us)} | {fmt(base)} |")
        if len(slower) > 12:
            w(f"   | ... {len(slower) - 12} more | | | | | |")
    w("")
    big = [r for r in rows if r["kernel"] == "Opt4GPTQ" and r["m"] == 1 and r["weight_bytes"] >= 20e6]
    seen = set()
    big_unique = []
    for r in big:
        key = (r["k"], r["n"], r["act_order"])
        if key not in seen:
            seen.add(key)
            big_unique.append(r)
    w("2. At M = 1 on layers with >= 20 MB of int4 weights: >= 85% of the copy bandwidth and >= 3.3x the dense fp16 GEMM.")
    w("")
    w("   | layer (K x N) | MB | Opt4GPTQ µs b2b / graph | % BW b2b / graph | read-ref % BW graph | vs dense b2b / graph | Baseline % BW graph | Deterministic % BW graph |")
    w("   |---|---|---|---|---|---|---|---|")
    for r in sorted(big_unique, key=lambda r: r["weight_bytes"]):
        base = t[(r["model"], r["layer"], 1, "Baseline")]
        det = t.get((r["model"], r["layer"], 1, "Deterministic"))
        read_pct = 100 * r["weight_bytes"] / (r["read_ref_us"] * 1e-6) / 1e9 / meta["copy_gbps"]
        vs_dense = r["cublas_us_b2b"] / r["us_b2b"] if r["cublas_us_b2b"] > 0 else float("nan")
        vs_dense_g = r["cublas_us"] / r["us_graph"] if r["cublas_us"] > 0 else float("nan")
        w(f"   | {r['k']}x{r['n']}{' act-order' if r['act_order'] else ''} | {r['weight_bytes'] / 1e6:.0f} | "
          f"{fmt(r['us_b2b'])} / {fmt(r['us_graph'])} | {fmt(r['pct_copy_bw'])} / {fmt(r['pct_copy_bw_graph'])} | "
          f"{fmt(read_pct)} | {fmt(vs_dense, 2)}x / {fmt(vs_dense_g, 2)}x | {fmt(base['pct_copy_bw_graph'])} | "
          f"{fmt(det['pct_copy_bw_graph']) if det else '-'} |")
    w("")

    # ---- paper's Table 1 ----------------------------------------------------------------------------------------
    w("## Gain over Baseline per model (the paper's Table 1), one decoder layer's four linears summed")
    w("")
    w("Baseline time / preset time, back to back; > 1 is faster than Baseline.")
    w("")
    header = "| model | M | Baseline µs | " + " | ".join(k for k in kernels if k != "Baseline") + " |"
    w(header)
    w("|" + "---|" * (3 + len(kernels) - 1))
    table1 = defaultdict(dict)
    for model in models:
        if model == "Large":
            continue
        for m in ms:
            sums = {}
            for k in kernels:
                vals = [t[(model, layer, m, k)]["us_b2b"] for layer in LAYERS if (model, layer, m, k) in t]
                if len(vals) == 4:
                    sums[k] = sum(vals)
            if "Baseline" not in sums:
                continue
            table1[model][m] = {k: sums["Baseline"] / v for k, v in sums.items()}
            cells = " | ".join(fmt(sums["Baseline"] / sums[k], 2) if k in sums else "-" for k in kernels if k != "Baseline")
            w(f"| {model} | {m} | {fmt(sums['Baseline'])} | {cells} |")
    w("")

    # ---- per layer at M = 1 -------------------------------------------------------------------------------------
    w("## Every layer at M = 1")
    w("")
    w("| model | layer | K x N | MB | read-ref µs (graph) | dense µs | " + " | ".join(kernels) + " |")
    w("|" + "---|" * (6 + len(kernels)))
    for model in models:
        for layer in sorted({r["layer"] for r in rows if r["model"] == model}, key=lambda x: (LAYERS + [x]).index(x)):
            if (model, layer, 1, "Baseline") not in t:
                continue
            b = t[(model, layer, 1, "Baseline")]
            at_m1 = [t[(model, layer, 1, k)] for k in kernels if (model, layer, 1, k) in t]
            cells = " | ".join(f"{fmt(x['us_b2b'])} ({fmt(x['pct_copy_bw'], 0)}%)" for x in at_m1)
            w(f"| {model} | {layer} | {b['k']}x{b['n']} | {b['weight_bytes'] / 1e6:.1f} | {fmt(b['read_ref_us_b2b'])} "
              f"({fmt(b['read_ref_us'])}) | {fmt(b['cublas_us_b2b'])} | {cells} |")
    w("")
    w("Cells: µs back to back (% of copy bandwidth). results.csv has every M, graph and event-pair times, K blocks, "
      "launches per call and the checked error.")
    w("")

    # ---- plots --------------------------------------------------------------------------------------------------
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        w("(matplotlib not available: plots not drawn)")
        plt = None
    if plt is not None:
        plot_models = [m for m in models if m in table1]
        cols = 3
        rows_n = math.ceil(len(plot_models) / cols)
        fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 3.6 * rows_n), squeeze=False)
        for i, model in enumerate(plot_models):
            ax = axes[i // cols][i % cols]
            for k in kernels:
                if k == "Baseline":
                    continue
                xs = [m for m in ms if k in table1[model].get(m, {})]
                ax.plot(xs, [table1[model][m][k] for m in xs], marker="o", label=k)
            ax.axhline(1.0, color="grey", lw=0.8)
            ax.set_xscale("log", base=2)
            ax.set_title(model)
            ax.set_xlabel("M (tokens)")
            ax.set_ylabel("speedup over Baseline")
        for j in range(len(plot_models), rows_n * cols):
            axes[j // cols][j % cols].axis("off")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"Gain over Baseline, decoder-layer linears summed ({meta['device']})")
        fig.tight_layout()
        fig.savefig(os.path.join(directory, "speedup_vs_m.png"), dpi=110)
        plt.close(fig)

        unique = []
        seen = set()
        for r in rows:
            key = (r["k"], r["n"], r["act_order"])
            if r["m"] == 1 and r["kernel"] == "Baseline" and key not in seen:
                seen.add(key)
                unique.append(r)
        unique.sort(key=lambda r: r["weight_bytes"])
        fig, ax = plt.subplots(figsize=(min(16, max(8, 0.6 * len(unique))), 5))
        show = ["read-ref"] + [k for k in ["Baseline", "Opt4GPTQ", "Deterministic"] if k in kernels]
        width = 0.8 / len(show)
        for j, k in enumerate(show):
            vals = []
            for r in unique:
                if k == "read-ref":
                    vals.append(100 * r["weight_bytes"] / (r["read_ref_us"] * 1e-6) / 1e9 / meta["copy_gbps"])
                else:
                    vals.append(t[(r["model"], r["layer"], 1, k)]["pct_copy_bw_graph"])
            ax.bar([i + j * width for i in range(len(unique))], vals, width, label=k)
        ax.axhline(85, color="red", lw=0.8, ls="--", label="85% target")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(unique))])
        ax.set_xticklabels([f"{r['k']}x{r['n']}{'*' if r['act_order'] else ''}\n{r['weight_bytes'] / 1e6:.0f} MB"
                            for r in unique], fontsize=6, rotation=60)
        ax.set_ylabel("% of copy bandwidth (graph replay)")
        ax.set_title(f"M = 1: weight bytes per second over the copy bandwidth ({meta['device']}; * act-order)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(directory, "roofline_m1.png"), dpi=110)
        plt.close(fig)
        w("![speedup vs M](speedup_vs_m.png)")
        w("")
        w("![roofline at M = 1](roofline_m1.png)")
    with open(os.path.join(directory, "summary.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {os.path.join(directory, 'summary.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
