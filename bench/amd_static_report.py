#!/usr/bin/env python3
"""Static report of what each policy combination and the decode preset compile to on gfx906 (HYGON DCU Z100), from
hipcc's assembly.

    bench/amd_static_report.py CODEGEN_DIR [OUT.md] [--arch gfx906] [--compare COMPARE_DIR]

CODEGEN_DIR is <build>/tests/codegen (the build compiles tests/codegen/instantiate.cpp per architecture and
combination: <arch>_<i>.s, i = bit 0 InlineAsm, bit 1 Half2, bit 2 SharedBuffered; and tests/codegen/decode_kernels.cpp,
every row entry of presets::Decode: decode_<arch>.s). No GPU is needed. COMPARE_DIR is the output folder of
bench/decode_isa_compare.py (its decode_isa_compare.json): with it, the report adds the decode preset's instructions
per 16-byte weight load on gfx906 against the NVIDIA build's SASS.
For each kernel: registers, LDS, scratch and the compiler's occupancy from its resource comments, the occupancy
boundary it is near (waves per SIMD that its VGPRs, SGPRs and LDS allow, and how far it is from one wave more or one
wave less), and instruction counts for the whole kernel and for its hot loop: the innermost loop (LLVM's loop
comments in the assembly: a loop with no loop inside it) that streams the weights, i.e. holds 16-byte loads.
"""
import json
import os
import re
import sys

COMBINATIONS = {
    0: ("Scalar", "GlobalAtomic", "Builtin", "Baseline"),
    1: ("Scalar", "GlobalAtomic", "InlineAsm", "ILA"),
    2: ("Half2", "GlobalAtomic", "Builtin", "VML"),
    3: ("Half2", "GlobalAtomic", "InlineAsm", ""),
    4: ("Scalar", "SharedBuffered", "Builtin", "SMB"),
    5: ("Scalar", "SharedBuffered", "InlineAsm", ""),
    6: ("Half2", "SharedBuffered", "Builtin", ""),
    7: ("Half2", "SharedBuffered", "InlineAsm", "Opt4GPTQ"),
}

COUNTS = [
    ("pk_fma", r"^v_pk_fma_f16$"),
    ("pk_add", r"^v_pk_add_f16$"),
    ("asm_pk", None),  # packed instructions inside inline-asm blocks
    ("ld16", r"^global_load_(ushort|sshort|short_d16|short_d16_hi)$"),
    ("ld32", r"^global_load_dword$"),
    ("ld64", r"^global_load_dwordx2$"),
    ("ld128", r"^global_load_dwordx4$"),
    ("ds_read", r"^ds_read"),
    ("ds_write", r"^ds_write"),
    ("cmpswap", r"^global_atomic_cmpswap$"),
    ("pk_atomic", r"^global_atomic_pk_add_f16$"),
    ("barrier", r"^s_barrier$"),
]


def kernels(text):
    """dequant_gemm kernels of one assembly file: {(rows, act_order): (lines, resources)}."""
    out = {}
    lines = text.splitlines()
    i = 0
    name_re = re.compile(r"^(_Z\w*dequant_gemm_kernel\w*ELi(\d+)ELb([01])EEEv\w*):")
    while i < len(lines):
        m = name_re.match(lines[i])
        if not m:
            i += 1
            continue
        rows, act = int(m.group(2)), m.group(3) == "1"
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith(".Lfunc_end"):
            body.append(lines[i])
            i += 1
        res = {}
        while i < len(lines) and not name_re.match(lines[i]) and ".globl" not in lines[i]:
            for key, pat in (("vgpr", r"; NumVgprs: (\d+)"), ("sgpr", r"; NumSgprs: (\d+)"),
                             ("scratch", r"; ScratchSize: (\d+)"), ("occupancy", r"; Occupancy: (\d+)"),
                             ("lds", r"; LDSByteSize: (\d+)"), ("code", r"; codeLenInByte = (\d+)")):
                mm = re.search(pat, lines[i])
                if mm and key not in res:
                    res[key] = int(mm.group(1))
            i += 1
        res["name"] = m.group(1)
        res["workgroup"] = workgroup_size(text, m.group(1))
        out[(rows, act)] = (body, res)
    return out


def workgroup_size(text, name):
    """The kernel's .max_flat_workgroup_size from the code-object metadata (it comes before the kernel's .name)."""
    at = text.find(f".name:           {name}\n")
    if at < 0:
        at = text.find(f".name: {name}")
    found = re.findall(r"\.max_flat_workgroup_size:\s+(\d+)", text[:at]) if at >= 0 else []
    return int(found[-1]) if found else 256


def instructions(body):
    """(mnemonic, inside inline asm) per instruction line."""
    inside = False
    result = []
    for line in body:
        s = line.strip()
        if s.startswith(";;#ASMSTART"):
            inside = True
            continue
        if s.startswith(";;#ASMEND"):
            inside = False
            continue
        if not s or s.startswith(";") or s.startswith(".") or s.endswith(":"):
            continue
        result.append((s.split()[0], inside, s))
    return result


def loop_blocks(body):
    """{loop header: (parent header or None, [(first line, end line) of each of its own blocks])}, read from the comments
    LLVM writes on each basic block ("=>This Loop Header", "in Loop: Header=BB0_19 Depth=2", "Parent Loop BB0_14"):
    the compiler's own loop nesting, not a guess from branch targets (guards and group changes branch backwards
    inside a loop without being loops)."""
    blocks = []  # [name, innermost loop or None, first line, parents named (outermost first)]
    for idx, line in enumerate(body):
        m = re.match(r"^(?:\.L(BB\w+):|; %bb\.\d+:)(.*)$", line)
        if m:
            inner = re.search(r"in Loop: Header=(BB\w+)", m.group(2))
            blocks.append([m.group(1), inner.group(1) if inner else None, idx, []])
        if not blocks or not line.lstrip().startswith((";", ".L")):
            continue
        # A header's marks may be on its label's line or on comment lines after it.
        if "Loop Header" in line:
            blocks[-1][1] = blocks[-1][0]
        parent = re.search(r"Parent Loop (BB\w+)", line)
        if parent:
            blocks[-1][3].append(parent.group(1))
    loops = {}
    for i, (name, header, first, parents) in enumerate(blocks):
        if header is None:
            continue
        end = blocks[i + 1][2] if i + 1 < len(blocks) else len(body)
        entry = loops.setdefault(header, [None, []])
        entry[1].append((first, end))
        if parents:  # only a loop's header block names its parents; the nearest comes last
            entry[0] = parents[-1]
    return {h: (e[0], e[1]) for h, e in loops.items()}


def loop_lines(body, loops, header):
    """The lines of a loop, its inner loops included, in program order."""
    def inside(h):
        while h is not None:
            if h == header:
                return True
            h = loops[h][0]
        return False
    ranges = sorted(r for h, (_, rs) in loops.items() if inside(h) for r in rs)
    return [line for a, b in ranges for line in body[a:b]]


def weight_loads(region):
    return sum(1 for l in region if re.search(r"global_load_dwordx4\b", l))


def packed_math(region):
    return sum(1 for l in region if re.search(r"\b(v_pk_fma_f16|v_dot2\w*|v_mfma\w*)\b", l))


def hot_loop(body):
    """Lines of the hot loop: among the innermost loops (no loop inside them) that hold 16-byte weight loads
    (global_load_dwordx4), the one with the most packed math (v_pk_fma_f16, v_dot2*). Its blocks include the
    group-change path (scale and zero reload, taken once per group) and the tail guards."""
    loops = loop_blocks(body)
    innermost = [h for h in loops if not any(p == h for p, _ in loops.values())]
    candidates = [(h, loop_lines(body, loops, h)) for h in innermost]
    candidates = [(h, lines) for h, lines in candidates if weight_loads(lines) > 0]
    if not candidates:
        return []
    return max(candidates, key=lambda c: (packed_math(c[1]), len(c[1])))[1]


# Waves per SIMD a VGPR count allows: (VGPRs per lane of a SIMD, allocation granule, most waves). gfx906: 256 VGPRs
# in granules of 4, 10 waves; gfx90a / gfx940: 512 (VGPRs and AGPRs together) in granules of 8, 8 waves.
VGPR_FILE = {"gfx906": (256, 4, 10), "gfx90a": (512, 8, 8), "gfx940": (512, 8, 8)}


def waves_for(vgprs, arch):
    total, granule, most = VGPR_FILE.get(arch, VGPR_FILE["gfx906"])
    allocated = -(-max(vgprs, 1) // granule) * granule
    return min(most, total // allocated)


# SGPRs per wave against waves per SIMD on gfx9 (LLVM's GCNSubtarget::getOccupancyWithNumSGPRs, NumSgprs counting
# VCC and the other extra SGPRs, as the resource comment does): the first line a count fits under gives the waves.
SGPR_LINES = ((80, 10), (88, 9), (100, 8), (1 << 30, 7))
# Per compute unit: 64 KiB of LDS, allocated in 512-byte granules (128 dwords, gfx7-gfx9), shared by its 4 SIMDs.
LDS_BYTES, LDS_GRANULE, SIMDS = 65536, 512, 4


def vgpr_line(waves, arch):
    """The most VGPRs a wave may use for `waves` waves per SIMD."""
    total, granule, _ = VGPR_FILE.get(arch, VGPR_FILE["gfx906"])
    return total // waves // granule * granule


def occupancy(res, arch):
    """Waves per SIMD allowed by each resource (VGPRs, SGPRs, LDS), the least of them, and a text naming the boundary
    the kernel is near. LDS is counted per compute unit: a block of W waves puts one wave on each SIMD per 64 lanes,
    so B blocks per CU give B x W / 4 waves per SIMD. (LLVM 15's own "Occupancy" comment compares B x W, waves per CU,
    with the per-SIMD limit, so it misses an LDS bound; this is why the report computes it.)"""
    _, _, most = VGPR_FILE.get(arch, VGPR_FILE["gfx906"])
    vgprs, sgprs, lds = res.get("vgpr", 0), res.get("sgpr", 0), res.get("lds", 0)
    block_waves = -(-res.get("workgroup", 256) // 64)
    v_waves = waves_for(vgprs, arch)
    s_waves = min(most, next(w for line, w in SGPR_LINES if sgprs <= line))
    if lds:
        allocated = -(-lds // LDS_GRANULE) * LDS_GRANULE
        blocks = LDS_BYTES // allocated
        l_waves = min(most, blocks * block_waves // SIMDS)
    else:
        blocks, l_waves = None, most
    waves = min(v_waves, s_waves, l_waves)
    parts = []
    if v_waves >= most:
        parts.append(f"{vgprs} VGPRs: {v_waves} waves (the most)")
    else:
        up, cap = vgpr_line(v_waves + 1, arch), vgpr_line(v_waves, arch)
        text = f"{vgprs} VGPRs: {v_waves} waves, {vgprs - up} past the {v_waves + 1}-wave line ({up})"
        if cap == vgprs:
            text += f", at the {v_waves}-wave line ({cap}: one register more loses a wave)"
        elif cap - vgprs <= 8:  # near the other edge too: a few registers more lose a wave
            text += f", {cap - vgprs} under the {v_waves}-wave line ({cap})"
        parts.append(text)
    if s_waves <= waves:
        parts.append(f"{sgprs} SGPRs: {s_waves} waves")
    if lds and l_waves <= v_waves:
        text = f"LDS {lds} B: {blocks} block{'s' if blocks != 1 else ''} per CU = {l_waves} wave{'s' if l_waves != 1 else ''}"
        if l_waves < most:
            more = LDS_BYTES // (blocks + 1) // LDS_GRANULE * LDS_GRANULE
            text += f", {blocks + 1} blocks need <= {more} B"
        parts.append(text)
    binding = [name for name, w in (("VGPRs", v_waves), ("SGPRs", s_waves), ("LDS", l_waves)) if w == waves]
    return {"waves": waves, "vgpr_waves": v_waves, "sgpr_waves": s_waves, "lds_waves": l_waves, "binding": binding,
            "text": "; ".join(parts) + f" → **{waves}** ({' and '.join(binding)})"}


def count(instrs):
    c = {}
    for name, pattern in COUNTS:
        if pattern is None:
            c[name] = sum(1 for mn, inside, _ in instrs if inside and mn.startswith("v_pk_"))
        else:
            c[name] = sum(1 for mn, _, _ in instrs if re.match(pattern, mn))
    c["total"] = len(instrs)
    c["valu"] = sum(1 for mn, _, _ in instrs if mn.startswith("v_"))
    c["dot2"] = sum(1 for mn, _, _ in instrs if mn.startswith("v_dot2"))
    c["and_or"] = sum(1 for mn, _, _ in instrs if mn == "v_and_or_b32")
    return c


def per_16b(n, loads):
    return f"{n / loads:.1f}" if loads else "-"


def combination_tables(directory, arch):
    lines = []
    for rows in (1, 8):
        lines.append(f"## The paper's combinations, {rows} row{'s' if rows > 1 else ''} of M per block")
        lines.append("")
        lines.append("| # | preset | Load | Reduce | Math | VGPR | SGPR | LDS B | scratch B | occupancy (compiler) | "
                     "occupancy boundary: waves per SIMD | code B | kernel: pk_fma / pk_add (in asm) | "
                     "16/32/64/128-bit global loads | atomics (cmpswap / pk_add) | hot loop: instr | VALU | pk_fma | "
                     "pk_add | 128-bit loads | ds_read | instr per 16-B load | VALU per 16-B load |")
        lines.append("|" + "---|" * 23)
        for i, (load, reduce, math_, preset) in COMBINATIONS.items():
            with open(os.path.join(directory, f"{arch}_{i}.s")) as f:
                ks = kernels(f.read())
            body, res = ks[(rows, False)]
            whole = count(instructions(body))
            hot = count(instructions(hot_loop(body)))
            lines.append(
                f"| {i} | {preset} | {load} | {reduce} | {math_} | {res.get('vgpr')} | {res.get('sgpr')} | "
                f"{res.get('lds')} | {res.get('scratch')} | {res.get('occupancy')} | {occupancy(res, arch)['text']} | "
                f"{res.get('code')} | {whole['pk_fma']} / {whole['pk_add']} ({whole['asm_pk']}) | "
                f"{whole['ld16']}/{whole['ld32']}/{whole['ld64']}/{whole['ld128']} | "
                f"{whole['cmpswap']} / {whole['pk_atomic']} | {hot['total']} | {hot['valu']} | {hot['pk_fma']} | "
                f"{hot['pk_add']} | {hot['ld128']} | {hot['ds_read']} | {per_16b(hot['total'], hot['ld128'])} | "
                f"{per_16b(hot['valu'], hot['ld128'])} |")
        lines.append("")
    return lines


def decode_table(directory, arch):
    """presets::Decode, every row entry of tests/codegen/decode_kernels.cpp (1 .. 8 rows, and 1 row with act-order)."""
    path = os.path.join(directory, f"decode_{arch}.s")
    if not os.path.exists(path):
        return [f"(no {path}: build the codegen target for the decode preset's rows)", ""]
    with open(path) as f:
        ks = kernels(f.read())
    lines = ["## presets::Decode (the SIMT decode kernel), every row entry", "",
             "`tests/codegen/decode_kernels.cpp`: `dequant_gemm_kernel<presets::Decode, rows, act_order>`, the tile of "
             "AMD builds (DefaultDecodeTile: 4 waves of 64 column lanes, batches of 2 packed words per lane, two in "
             "flight, one staging load at a time).",
             "",
             "| rows of M | act-order | VGPR | SGPR | LDS B | scratch B | occupancy (compiler) | "
             "occupancy boundary: waves per SIMD | code B | hot loop: instr | VALU | v_dot2 | v_and_or | pk_fma | "
             "pk_add | 128-bit loads | ds_read | instr per 16-B load | VALU per 16-B load |",
             "|" + "---|" * 19]
    for (rows, act) in sorted(ks, key=lambda k: (k[1], k[0])):
        body, res = ks[(rows, act)]
        hot = count(instructions(hot_loop(body)))
        lines.append(
            f"| {rows} | {'yes' if act else ''} | {res.get('vgpr')} | {res.get('sgpr')} | {res.get('lds')} | "
            f"{res.get('scratch')} | {res.get('occupancy')} | {occupancy(res, arch)['text']} | {res.get('code')} | "
            f"{hot['total']} | {hot['valu']} | {hot['dot2']} | {hot['and_or']} | {hot['pk_fma']} | {hot['pk_add']} | "
            f"{hot['ld128']} | {hot['ds_read']} | {per_16b(hot['total'], hot['ld128'])} | "
            f"{per_16b(hot['valu'], hot['ld128'])} |")
    lines.append("")
    return lines


def comparison(compare_dir):
    """The decode preset's innermost loop per 16-byte weight load: gfx906 VALU against sm_90 SASS, from
    bench/decode_isa_compare.py's JSON."""
    path = os.path.join(compare_dir, "decode_isa_compare.json")
    with open(path) as f:
        result = json.load(f)
    g, n = result["gfx906"]["1"], result["sm_90"]["1"]
    gm, nm = dict(g["valu_mix_per_16B"]), dict(n["mix_per_16B"])
    tools = result["tools"]
    verdict = ("fewer" if g["valu_per_16B"] < n["instructions_per_16B"] else
               "as many" if g["valu_per_16B"] == n["instructions_per_16B"] else "**more**")
    lines = ["## presets::Decode on gfx906 against the NVIDIA build (sm_90 SASS), per 16-byte weight load", "",
             f"Generated by `bench/decode_isa_compare.py OUT_DIR` ({tools['hipcc']}; nvcc {tools['nvcc']}; "
             f"{tools['disassembler']}{'; ' + tools['note'] if tools.get('note') else ''}). The same source "
             "(`tests/codegen/decode_kernels.cpp`) compiled for both; on each, the innermost loop that holds the 16-byte "
             "weight loads (gfx906: LLVM's innermost loop with `global_load_dwordx4`; SASS: the innermost backward-branch "
             "range with `LDG.E.128`), counted statically and divided by its 16-byte loads (the NVIDIA tile unrolls 4 "
             "words per batch, the AMD tile 2). gfx906: VALU instructions (`v_*`; the loop's scalar, LDS and memory "
             "instructions are in *all*); sm_90: every SASS instruction but NOP.", ""]
    with open(os.path.join(compare_dir, "decode_isa_compare.md")) as f:
        lines += f.read().rstrip("\n").splitlines()
    lines += ["",
              f"**At M = 1 gfx906 issues {verdict} VALU instructions per 16-byte load ({g['valu_per_16B']}) than the "
              f"NVIDIA build issues SASS instructions ({n['instructions_per_16B']})**; all gfx906 instructions of the "
              f"loop, scalar and memory included: {g['instructions_per_16B']}. Where they go (per 16-byte load, M = 1):",
              f"- The dot products: gfx906 has an fp16 dot into fp32 (DefaultDecodeMath = MathDot2F32): "
              f"{gm.get('v_dot2_f32_f16', 0)} `v_dot2_f32_f16` + {gm.get('v_fmac_f32', 0)} `v_fmac_f32`; sm_90 has none, "
              "so its preset runs the fp16 chain on range-scaled activations (MathBuiltin): its HFMA2 chain, then the "
              f"halves added in fp32 ({nm.get('HADD2', 0)} HADD2 and {nm.get('HFMA2', 0)} HFMA2 for dequantization and "
              f"chain together, {nm.get('FADD', 0)} FADD + {nm.get('FFMA', 0)} FFMA).",
              f"- The codec: {gm.get('v_and_or_b32', 0)} `v_and_or_b32` + {gm.get('v_pk_fma_f16', 0)} `v_pk_fma_f16` + "
              f"{gm.get('v_pk_add_f16', 0)} `v_pk_add_f16` on gfx906; {nm.get('LOP3', 0)} LOP3 on sm_90 (LOP3 also "
              "does the loop's other bit work).",
              f"- Overhead both carry in the loop: 32-/64-bit address and index arithmetic (gfx906: "
              f"{gm.get('v_mul_lo_u32', 0)} `v_mul_lo_u32`, {gm.get('v_add_u32', 0)} `v_add_u32`, "
              f"{gm.get('v_mad_u64_u32', 0)} `v_mad_u64_u32`; sm_90: {nm.get('IMAD', 0)} IMAD, {nm.get('SHF', 0)} SHF, "
              f"{nm.get('LEA', 0)} LEA, {nm.get('IADD3', 0)} IADD3), the group-change path (zero points unpacked: "
              f"gfx906 {gm.get('v_mul_u32_u24', 0)} `v_mul_u32_u24`, {gm.get('v_bfe_u32', 0)} `v_bfe_u32`, "
              f"{gm.get('v_cvt_f32_f16', 0)} `v_cvt_f32_f16`), the next batch's group (`b.begin / p.group_size`, an "
              "integer division: `v_rcp_iflag_f32` and its fix-ups on gfx906, I2F, MUFU.RCP, F2I and IMADs on sm_90) "
              f"and the batch handed from `next` to `cur` ({gm.get('v_mov_b32', 0)} `v_mov_b32` on gfx906, "
              f"{nm.get('MOV', 0)} MOV on sm_90).",
              "- Static counts: the group-change path runs once per group (with groups of 128 rows, every other "
              "iteration of a gfx906 lane: a stage is 64 rows of K, 16 per wave), the tail guards never in the steady "
              "state; an iteration executes fewer than the loop holds, on both.",
              ""]
    return lines


def main():
    args = sys.argv[1:]
    arch, compare_dir = "gfx906", None
    for flag in ("--arch", "--compare"):
        if flag in args:
            at = args.index(flag)
            if at + 1 >= len(args):
                print(__doc__)
                return 2
            if flag == "--arch":
                arch = args[at + 1]
            else:
                compare_dir = args[at + 1]
            del args[at:at + 2]
    if not args:
        print(__doc__)
        return 2
    directory = args[0]
    out_path = args[1] if len(args) > 1 else None
    total, granule, most = VGPR_FILE.get(arch, VGPR_FILE["gfx906"])
    lines = [f"# What each policy combination and the decode preset compile to on {arch}" +
             (" (HYGON DCU Z100)" if arch == "gfx906" else "") + " {#amd_static_report}",
             "",
             "Generated by `bench/amd_static_report.py <build>/tests/codegen " + (out_path or "OUT.md") +
             (f" --compare {compare_dir}" if compare_dir else "") + "` from hipcc's assembly (Debian hipcc 5.2, "
             "clang 15, `-O3`) of `tests/codegen/instantiate.cpp`, the paper's combinations, and of "
             "`tests/codegen/decode_kernels.cpp`, presets::Decode" +
             (f"; `{compare_dir}` is the output of `bench/decode_isa_compare.py`" if compare_dir else "") +
             ". No DCU ran this code: these are the compiler's figures, not measurements.",
             "",
             f"*Occupancy boundary*: waves per SIMD each resource allows, and the nearest line. VGPRs: {total} per lane "
             f"of a SIMD, allocated in granules of {granule}, at most {most} waves: waves = floor({total} / VGPRs "
             f"rounded up to {granule}), so 84 VGPRs is the 3-wave line and 64 the 4-wave line; *N past the W-wave "
             "line (L)* is how many registers a kernel must shed for one wave more, *N under* how few it may add "
             "before it loses one (shown within 8). SGPRs (gfx9: <= 80 for 10 waves, 88 for 9, 100 for 8) are named "
             "when they bind. LDS: 64 KiB per compute unit in 512-byte granules; a block of 4 waves puts one wave on "
             "each of the 4 SIMDs, so B blocks per CU are B waves per SIMD (named when LDS allows no more waves than "
             "the VGPRs). The bold figure is the least of them, and what binds. *occupancy (compiler)* is LLVM 15's "
             "`; Occupancy` comment: it counts a block's waves per CU against the per-SIMD limit for LDS, so it "
             "misses an LDS bound (Decode's 8-row entry).",
             "",
             "*Hot loop*: the innermost loop (no loop inside it, from the loop comments LLVM writes on each basic "
             "block) that holds the 16-byte weight loads (`global_load_dwordx4`), counted once per iteration. For the "
             "paper's combinations it is the batch loop (the stage loop around it, which also holds the first batch "
             "and the staging, is not counted); for Decode the stage loop, which holds one batch of 2 words per lane. "
             "These are static counts: they include the group-change path (scale and zero reload, run once per "
             "group) and the tail guards, so they overstate what one iteration executes.",
             ""]
    lines += combination_tables(directory, arch)
    lines += decode_table(directory, arch)
    if compare_dir:
        lines += comparison(compare_dir)
    lines += [
        "How to read it:",
        "- **ILA (InlineAsm)**: the packed count does not change, because clang 15 already turns `__hfma2`/`__hadd2` "
        "into `v_pk_fma_f16`/`v_pk_add_f16` on gfx9; with InlineAsm they come from the `asm` statements (the number in "
        "parentheses). The compiler can no longer fold or reorder across them, which is all ILA changes on gfx906 "
        "with this compiler.",
        "- **VML (Half2)**: the 16-bit activation loads (`global_load_ushort`/`short_d16`) disappear in favour of "
        "32-bit ones; they sit in the staging loop, outside the hot loop.",
        "- **SMB (SharedBuffered)**: the unrolled per-thread compare-and-swap loops (2 per row of M) become one "
        "compare-and-swap site in the commit loop after a barrier and shared-memory reads; per output and block, one "
        "atomic instead of one per K sub-slice (8 with SplitKTile), and none when one block spans K. gfx906 has no "
        "packed fp16 atomic, so each atomic is a `global_atomic_cmpswap` retry loop: that is where SMB pays on the DCU. "
        "Its block's shared buffer also costs VGPRs: SMB and Opt4GPTQ sit a few registers past the 3-wave line at 1 row.",
        "- **The codec on gfx9**: each magic-number pair is one `v_and_or_b32` (inline assembly, mask in an SGPR): "
        "clang 15 emitted a `v_and_b32` and a `v_or_b32` per pair (VOP3 takes no literal), 10% of the 1-row hot loop.",
        "- **Decode**: fp32 dot products (`v_dot2_f32_f16`, 4 per packed word and row of M) and one `v_fmac_f32` per "
        "packed word (a column's 8 rows) and row of M for the scale. At 1 row both its VGPRs and its LDS hold it at 3 "
        "waves per SIMD: its 20480 bytes are the activation window (8192 rows of K, 16 KiB) and the act-order group "
        "map of the window (`word_group`, 1024 ints, 4 KiB), which the kernels without act-order allocate too; a 4th "
        "wave would need 64 VGPRs and at most 16 KiB. From 5 rows the reduction's buffer is the larger member of the "
        "shared-memory union (ReduceSharedSerial: fp32 partials of 4 K sub-slices x rows x 256 columns, 4 KiB per row, "
        "and 32 bytes of warp-sum storage): at 8 rows 32800 bytes, 32 past the 2-block line, so one block per CU and "
        "1 wave per SIMD, which the compiler's occupancy comment (2) does not show.",
    ]
    text = "\n".join(lines) + "\n"
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)
        print(f"wrote {out_path}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
