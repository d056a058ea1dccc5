#!/usr/bin/env python3
"""Compares two directories of generated code written by compare.sh; prints a Markdown report.

    compare.py BASE_DIR CURRENT_DIR BASE_NAME
"""
import hashlib
import os
import re
import sys

KERNELS = ["Baseline", "ILA", "VML", "VML+ILA", "SMB", "SMB+ILA", "SMB+VML", "Opt4GPTQ", "Custom",
           "Vec8+SMB+Dot2F32", "Deterministic"]
ENTRY = r"ELi(\d+)ELb([01])E"


def digest(text):
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def ptxas(path):
    """(rows, act_order) -> 'N registers, B barriers, S bytes smem' of each GEMM entry point."""
    out, name = {}, None
    for line in open(path):
        m = re.search(r"Compiling entry function '(\S+)'", line)
        if m:
            name = m.group(1)
            continue
        m = re.search(r"Used (\d+) registers, used (\d+) barriers(?:, (\d+) bytes smem)?", line)
        if m and name and "dequant_gemm_kernel" in name:
            key = re.search(ENTRY, name).groups()
            out[key] = f"{m.group(1)} regs, {m.group(2)} bar, {m.group(3) or 0} B smem"
            name = None
    return out


def ptx(path):
    """(rows, act_order) -> (instructions, digest of the body with symbols and virtual registers renamed)."""
    out = {}
    for m in re.finditer(r"\.entry (\S*dequant_gemm_kernel\S*)\((.*?)\n}\n", open(path).read(), re.S):
        body = re.sub(r"_Z\w+", "SYM", m.group(2))
        body = re.sub(r"%[a-z]+\d+", "%R", body)
        lines = [l for l in body.splitlines() if l.strip() and not l.strip().startswith(("//", ".", "{", "}"))
                 and not l.strip().endswith(":")]
        out[re.search(ENTRY, m.group(1)).groups()] = (len(lines), digest(body))
    return out


def amd(path):
    """(rows, act_order) -> (instructions, digest, vgpr, sgpr, lds, scratch) of each GEMM entry point."""
    text = open(path).read()
    out = {}
    for m in re.finditer(r"^(_Z\w*dequant_gemm_kernel\w*):.*\n(.*?)^\s*s_endpgm", text, re.S | re.M):
        body = re.sub(r"_Z\w+", "SYM", m.group(2))
        body = "\n".join(l for l in body.splitlines() if not l.strip().startswith(";"))
        count = sum(1 for l in body.splitlines() if re.match(r"^\s+[a-z]+_[a-z0-9_]+", l))
        out[re.search(ENTRY, m.group(1)).groups()] = [count, digest(body)]
    for block in re.split(r"\n  - \.", text[text.find("amdhsa.kernels"):]):
        name = re.search(r"\.name:\s+(\S+)", block)
        if not name or "dequant_gemm_kernel" not in name.group(1):
            continue
        key = re.search(ENTRY, name.group(1)).groups()
        for field in ["vgpr_count", "sgpr_count", "group_segment_fixed_size", "private_segment_fixed_size"]:
            v = re.search(r"\." + field + r":\s+(\d+)", block)
            out.setdefault(key, []).append(int(v.group(1)) if v else None)
    return {k: tuple(v) for k, v in out.items()}


def main():
    base, current, base_name = sys.argv[1:4]
    print(f"# Generated code: {base_name} against the working tree\n")
    print("Per kernel, the 12 entry points (rows of M 1..8 per block; act-order at 1, 2, 4, 8 rows): sm_90 ptxas "
          "registers/barriers/shared memory, the PTX (up to symbol and virtual-register names), and the gfx906 "
          "assembly (up to symbol names) with its VGPR/SGPR/LDS/scratch.\n")
    print("| # | kernel | sm_90 ptxas | sm_90 PTX | gfx906 asm + resources | example (1 row): regs; VGPR/SGPR |")
    print("|---|---|---|---|---|---|")
    for i, name in enumerate(KERNELS):
        cells = []
        for reader, file in [(ptxas, f"sm_90_{i}.ptxas"), (ptx, f"sm_90_{i}.ptx"), (amd, f"gfx906_{i}.s")]:
            b = reader(os.path.join(base, file))
            c = reader(os.path.join(current, file))
            if not b:
                cells.append("DIFFERS (nothing found in the base)")
            elif b == c:
                cells.append(f"identical ({len(b)} entries)")
            else:
                diffs = [f"{k}: {b.get(k)} -> {c.get(k)}" for k in sorted(set(b) | set(c)) if b.get(k) != c.get(k)]
                cells.append("DIFFERS: " + "; ".join(diffs[:3]))
        one = ("1", "0")
        regs = ptxas(os.path.join(current, f"sm_90_{i}.ptxas")).get(one, "?")
        res = amd(os.path.join(current, f"gfx906_{i}.s")).get(one, ("?",) * 6)
        print(f"| {i} | {name} | {cells[0]} | {cells[1]} | {cells[2]} | {regs}; {res[2]}/{res[3]} |")


if __name__ == "__main__":
    main()
