#!/usr/bin/env python3
"""Instructions per 16-byte weight load in the innermost loop of presets::Decode: gfx906 (HYGON DCU Z100) VALU
instructions from hipcc's assembly against the NVIDIA build's SASS for sm_90 (issue 10, item 3). No GPU is needed.

    bench/decode_isa_compare.py OUT_DIR [--hipcc PATH] [--nvcc PATH] [--disassembler PATH]

Compiles tests/codegen/decode_kernels.cpp (every row entry of the preset) twice, with the same flags as the codegen
tests: hipcc for gfx906 (assembly) and nvcc for sm_90 (a cubin, disassembled with nvdisasm or cuobjdump -sass).
Writes into OUT_DIR: decode_gfx906.s, decode_sm_90.cubin, decode_sm_90.sass, decode_isa_compare.json (read by
bench/amd_static_report.py --compare OUT_DIR) and decode_isa_compare.md (the table, also printed).

The innermost loop is, on gfx906, LLVM's innermost loop that holds the 16-byte weight loads (global_load_dwordx4;
bench/amd_static_report.py's hot_loop) and, in SASS, the innermost backward-branch range that holds the 16-byte weight
loads (LDG.E.128). Both are static counts of the loop's code: the group-change path (a new group's scales and zeros,
taken once per group) and the guards are in it, whether an iteration takes them or not. The tiles differ by design
(DefaultDecodeTile: 2 words per batch on AMD, 4 on NVIDIA), so the counts are divided by the loop's 16-byte loads.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import amd_static_report as amd  # noqa: E402  (the gfx906 assembly parser and its loop finder)

SOURCE = os.path.join(ROOT, "tests", "codegen", "decode_kernels.cpp")
SASS_LD128 = re.compile(r"^LDG(\.[A-Z0-9_]+)*\.128$")


def tool(name, given, env):
    """A tool from its option, its environment variable, PATH or /usr/local/cuda/bin (in that order), or None."""
    for candidate in (given, os.environ.get(env), shutil.which(name), f"/usr/local/cuda/bin/{name}"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def run(cmd):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def abi_v7_copy(cubin, out):
    """A copy of a cubin with the ELF header that disassemblers before CUDA 12.8 read (OS/ABI 0x33, ABI version 7,
    e_flags = SM | 0x500 | SM << 16). CUDA 13's nvcc writes ABI version 8 (OS/ABI 0x41, the SM in bits 8..15 of
    e_flags), which e.g. Debian 12's nvdisasm 11.8 refuses ("does not contain Cuda architecture information"); the
    code sections are the same sm_90 encoding, only the header's way of naming the architecture changed."""
    data = bytearray(open(cubin, "rb").read())
    if data[7] != 0x41 or data[8] != 8:
        return None
    flags = struct.unpack_from("<I", data, 0x30)[0]
    sm = (flags >> 8) & 0xFF
    data[7], data[8] = 0x33, 7
    struct.pack_into("<I", data, 0x30, sm | 0x500 | sm << 16)
    with open(out, "wb") as f:
        f.write(data)
    return out


def disassemble(disassembler, cubin, out_dir):
    """SASS text of the cubin; with an older disassembler, of its ABI-v7 copy (see abi_v7_copy)."""
    def attempt(path):
        cmd = [disassembler, "-c", path] if "nvdisasm" in os.path.basename(disassembler) else [disassembler, "-sass", path]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    result = attempt(cubin)
    note = None
    if result.returncode != 0 or not result.stdout.strip():
        copy = abi_v7_copy(cubin, os.path.join(out_dir, "decode_sm_90.abi7.cubin"))
        if copy is None:
            raise SystemExit(f"{disassembler} failed on {cubin}:\n{result.stderr}")
        result = attempt(copy)
        if result.returncode != 0:
            raise SystemExit(f"{disassembler} failed on {copy} too:\n{result.stderr}")
        note = "disassembled from a copy with the ELF ABI-v7 header (the disassembler predates CUDA 12.8's header)"
    return result.stdout, note


def sass_functions(text):
    """{(rows, act_order): [(address, opcode, line)] or labels} per dequant_gemm_kernel of nvdisasm / cuobjdump text:
    items are ('label', name) or ('insn', address, opcode, text)."""
    out = {}
    current = None
    for line in text.splitlines():
        head = re.search(r"(?:Function : |^\.text\.)(_Z\w+)", line)
        if head:
            m = re.search(r"dequant_gemm_kernel\w*ELi(\d+)ELb([01])EEEv", head.group(1))
            current = out.setdefault((int(m.group(1)), m.group(2) == "1"), []) if m else None
            continue
        if current is None:
            continue
        label = re.match(r"^(\.L\w+):", line.strip())
        if label:
            current.append(("label", label.group(1)))
            continue
        insn = re.match(r"^\s*/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)(.*?);", line)
        if insn:
            current.append(("insn", int(insn.group(1), 16), insn.group(2), line.strip()))
    return out


def sass_innermost_loop(items):
    """Instructions (opcode, text) of the innermost loop holding LDG.E.128: backward branches make address ranges
    [target, branch]; the innermost hold no other range."""
    insns = [i for i in items if i[0] == "insn"]
    labels = {}
    pending = []
    for item in items:  # a label names the address of the next instruction
        if item[0] == "label":
            pending.append(item[1])
        else:
            for name in pending:
                labels[name] = item[1]
            pending = []
    ranges = []
    for _, address, opcode, line in insns:
        if opcode.split(".")[0] != "BRA":
            continue
        target = re.search(r"`\((\.L\w+)\)", line)
        to = labels.get(target.group(1)) if target else None
        if to is None:
            hexaddr = re.search(r"BRA\S*\s+(?:`\()?0x([0-9a-f]+)", line)
            to = int(hexaddr.group(1), 16) if hexaddr else None
        if to is not None and to <= address:
            ranges.append((to, address))
    innermost = [r for r in ranges if not any(o != r and r[0] <= o[0] and o[1] <= r[1] for o in ranges)]
    best = []
    for lo, hi in innermost:
        body = [(op, line) for _, address, op, line in insns if lo <= address <= hi]
        if any(SASS_LD128.match(op) for op, _ in body) and len(body) > len(best):
            best = body
    return best


def per_load(histogram, loads):
    """Every mnemonic of the loop, most frequent first, per 16-byte load."""
    return [(name, round(n / loads, 2)) for name, n in histogram.most_common()]


def gfx906_counts(asm_text):
    out = {}
    for (rows, act), (body, res) in sorted(amd.kernels(asm_text).items()):
        loop = amd.instructions(amd.hot_loop(body))
        mnemonics = [re.sub(r"_e(32|64)$|_sdwa$|_dpp$", "", mn) for mn, _, _ in loop]
        loads = sum(1 for mn in mnemonics if mn == "global_load_dwordx4")
        valu = [mn for mn in mnemonics if mn.startswith("v_")]
        occ = amd.occupancy(res, "gfx906")
        out[f"{rows}{'a' if act else ''}"] = {
            "rows": rows, "act_order": act, "vgprs": res.get("vgpr"), "sgprs": res.get("sgpr"), "lds": res.get("lds"),
            "scratch": res.get("scratch"), "compiler_occupancy": res.get("occupancy"), "waves": occ["waves"],
            "occupancy": occ["text"], "loop_instructions": len(mnemonics), "loop_valu": len(valu),
            "loop_ld128": loads, "loop_dot2": sum(1 for mn in valu if mn.startswith("v_dot2")),
            "valu_per_16B": round(len(valu) / loads, 2) if loads else None,
            "instructions_per_16B": round(len(mnemonics) / loads, 2) if loads else None,
            "valu_mix_per_16B": per_load(Counter(valu), loads) if loads else [],
        }
    return out


def sm90_counts(sass_text):
    out = {}
    for (rows, act), items in sorted(sass_functions(sass_text).items()):
        loop = sass_innermost_loop(items)
        ops = [op for op, _ in loop if op != "NOP"]  # NOPs pad the code, they are not issued work
        loads = sum(1 for op in ops if SASS_LD128.match(op))
        out[f"{rows}{'a' if act else ''}"] = {
            "rows": rows, "act_order": act, "loop_instructions": len(ops), "loop_ld128": loads,
            "instructions_per_16B": round(len(ops) / loads, 2) if loads else None,
            "mix_per_16B": per_load(Counter(op.split(".")[0] for op in ops), loads) if loads else [],
        }
    return out


def markdown(result):
    lines = ["| rows of M | gfx906 VGPRs | gfx906 waves per SIMD | gfx906 loop: VALU / all | 16-B loads | "
             "**gfx906 VALU per 16 B** | sm_90 loop: SASS | 16-B loads | **sm_90 SASS per 16 B** | gfx906 / sm_90 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, g in result["gfx906"].items():
        n = result["sm_90"].get(key, {})
        ratio = (g["valu_per_16B"] / n["instructions_per_16B"]
                 if g.get("valu_per_16B") and n.get("instructions_per_16B") else None)
        lines.append(f"| {g['rows']}{' act-order' if g['act_order'] else ''} | {g['vgprs']} | {g['waves']} | "
                     f"{g['loop_valu']} / {g['loop_instructions']} | {g['loop_ld128']} | **{g['valu_per_16B']}** | "
                     f"{n.get('loop_instructions', '-')} | {n.get('loop_ld128', '-')} | "
                     f"**{n.get('instructions_per_16B', '-')}** | {'-' if ratio is None else f'{ratio:.2f}'} |")
    one_g, one_n = result["gfx906"].get("1", {}), result["sm_90"].get("1", {})
    if one_g and one_n:
        lines += ["", "M = 1, most frequent instructions per 16-byte load:",
                  "- gfx906 VALU: " + ", ".join(f"{n} {v}" for n, v in one_g["valu_mix_per_16B"][:12]),
                  "- sm_90 SASS: " + ", ".join(f"{n} {v}" for n, v in one_n["mix_per_16B"][:12])]
    return "\n".join(lines) + "\n"


def main():
    args = sys.argv[1:]
    opts = {}
    for name in ("--hipcc", "--nvcc", "--disassembler"):
        if name in args:
            at = args.index(name)
            opts[name] = args[at + 1]
            del args[at:at + 2]
    if len(args) != 1:
        print(__doc__)
        return 2
    out_dir = os.path.abspath(args[0])
    os.makedirs(out_dir, exist_ok=True)
    hipcc = tool("hipcc", opts.get("--hipcc"), "HIPCC")
    nvcc = tool("nvcc", opts.get("--nvcc"), "NVCC")
    disassembler = (tool("nvdisasm", opts.get("--disassembler"), "NVDISASM") or
                    tool("cuobjdump", None, "CUOBJDUMP"))
    missing = [n for n, t in (("hipcc", hipcc), ("nvcc", nvcc), ("nvdisasm or cuobjdump", disassembler)) if not t]
    if missing:
        raise SystemExit("decode_isa_compare: not found: " + ", ".join(missing) +
                         " (give --hipcc / --nvcc / --disassembler, or HIPCC / NVCC / NVDISASM)")
    asm = os.path.join(out_dir, "decode_gfx906.s")
    cubin = os.path.join(out_dir, "decode_sm_90.cubin")
    run([hipcc, "-std=c++17", "-O3", "--offload-arch=gfx906", "--cuda-device-only", "-S",
         "-Wno-unused-command-line-argument", "-Iinclude", "-o", asm, SOURCE])
    run([nvcc, "-std=c++17", "-O3", "-arch=sm_90", "-cubin", "-x", "cu", "-Iinclude", "-o", cubin, SOURCE])
    sass, note = disassemble(disassembler, cubin, out_dir)
    with open(os.path.join(out_dir, "decode_sm_90.sass"), "w") as f:
        f.write(sass)
    version = lambda exe: subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
    result = {
        "tools": {"hipcc": (version(hipcc) or ["?"])[0], "nvcc": (version(nvcc) or ["?"])[-1],
                  "disassembler": os.path.basename(disassembler) + ": " + (version(disassembler) or ["?"])[-1],
                  "note": note},
        "gfx906": gfx906_counts(open(asm).read()),
        "sm_90": sm90_counts(sass),
    }
    with open(os.path.join(out_dir, "decode_isa_compare.json"), "w") as f:
        json.dump(result, f, indent=1)
    table = markdown(result)
    with open(os.path.join(out_dir, "decode_isa_compare.md"), "w") as f:
        f.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
