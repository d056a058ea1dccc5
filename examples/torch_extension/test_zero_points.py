#!/usr/bin/env python3
"""Zero points of 0 in GPTQ v1 ("gptq") checkpoints, and the [1, N] scales of group-size -1 layers, through the PyTorch
extension.

    python3 examples/torch_extension/test_zero_points.py [--kernel opt4gptq|baseline|deterministic|all]

GPTQ v1 zero points are the packed v2 word minus 0x11111111 as one 32-bit subtraction (mod 2^32): a zero point of 0
borrows from the next nibble (and one in the top nibble wraps the word), so a reader must add 0x11111111 to the whole
word before splitting it, not 1 to each nibble. Checks:
  a. an asymmetric v1 layer (K=1024, N=512, groups of 128) in which about 5% of the (group, column) zero points are 0
     (those group columns have no negative weight), plus zero points of 0 placed by hand in the lowest, a middle and
     the highest nibble of some qzeros words (and words of all zeros, and borrow chains);
  b. on the host: dequantize() of the v1 tensors equals dequantize() of the same layer saved as v2, exactly; the v1
     words decode as the whole-word rule says (pure Python integers) and not as the nibble-wise one;
  c. on the GPU: gptq_gemm for M = 1, 5, 33 against an fp64 reference (relative error < 5e-3), v1 and v2, with and
     without act-order;
  d. a group-size -1 layer whose scales (and qzeros) are [1, N] tensors with stride (1, 1), as GPTQModel holds them;
     and row-strided scales / qzeros, and the op's argument checks.
Prints one line per check and "N passed, N failed"; exit status 0 when all pass, 1 on a failure, 77 without a GPU.
"""
import argparse
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opt4gptq_linear as ol  # noqa: E402

K, N, GROUP_SIZE = 1024, 512, 128
ROWS = (1, 5, 33)
MAX_REL_ERR = 5e-3

_results = []


def check(name, good, detail=""):
    good = bool(good)
    _results.append(good)
    print(f"{'OK  ' if good else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    return good


def rel(got, want):
    return ((got.double() - want.double()).norm() / want.double().norm()).item()


# ---- the layers ------------------------------------------------------------------------------------------------------
def make_layer(seed, group_size, act_order, zero_fraction=0.05):
    """An asymmetric layer, on the host, whose chosen (group, column) zero points are 0 (those group columns made
    nonnegative). Returns (v2 tensors, v1 tensors as quantize() writes them, weight [N, K], mask [G, N] of those
    pairs)."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(N, K, generator=gen) * 0.02  # nn.Linear layout [out, in]
    groups = 1 if group_size <= 0 else K // group_size
    # quantize() draws its act-order permutation from its generator first: a first pass with the same seed tells which
    # rows each group gets, so that the chosen group columns can be made nonnegative before the real pass.
    first = ol.quantize(weight, group_size=group_size, sym=False, checkpoint_format="gptq_v2", act_order=act_order,
                        generator=torch.Generator().manual_seed(seed + 1))
    mask = torch.rand(groups, N, generator=gen) < zero_fraction  # [G, N]: these zero points become 0
    nonnegative = mask[first["g_idx"].to(torch.int64)].t()  # [N, K]
    weight = torch.where(nonnegative, weight.abs(), weight)
    t = ol.quantize(weight, group_size=group_size, sym=False, checkpoint_format="gptq_v2", act_order=act_order,
                    generator=torch.Generator().manual_seed(seed + 1))
    assert torch.equal(t["g_idx"], first["g_idx"]), "quantize drew another act-order permutation"
    t_v1 = ol.quantize(weight, group_size=group_size, sym=False, checkpoint_format="gptq", act_order=act_order,
                       generator=torch.Generator().manual_seed(seed + 1))
    return t, t_v1, weight, mask


def place_zeros_by_hand(z):
    """Zero points of 0 (and borrow chains) placed by hand in chosen nibbles of chosen words. Returns the words."""
    g = z.shape[0]
    words = []

    def put(group, word, values):  # values: {nibble: zero point}
        for j, v in values.items():
            z[group % g, 8 * word + j] = v
        words.append((group % g, word))

    put(0, 0, {0: 0})                         # lowest nibble
    put(1, 5, {4: 0})                         # a middle nibble
    put(2, N // 8 - 1, {7: 0})                # highest nibble: the subtraction wraps the word
    put(3, 10, {0: 0, 3: 0, 7: 0})            # lowest, middle and highest together
    put(4, 20, {j: 0 for j in range(8)})      # a word of zero points 0: 0xEEEEEEEF in v1
    put(5, 30, {0: 0, 1: 1, 2: 1, 3: 0})      # borrow chains: 0 then 1 -> stored 0xF, 0xF, ...
    put(6, 40, {0: 15, 1: 0, 6: 0, 7: 15})    # 15 beside 0 (15 is stored as 14 or 13)
    put(7, 50, {j: 15 for j in range(8)})     # no zero point 0: no borrow at all
    return words


def host_checks(label, t_v2, t_v1_quantized, mask):
    """Part b, on the host. Returns the v1 and v2 tensors of the layer (with the hand-placed zero points)."""
    z = ol.unpack(t_v2["qzeros"], 1)  # [G, N] int64, true zero points
    chosen = int(mask.sum())
    check(f"{label}: quantizer keeps zero points of 0", bool((z[mask] == 0).all()) and chosen > 0,
          f"{chosen} of {mask.numel()} (group, column) pairs chosen ({100 * chosen / mask.numel():.1f}%), "
          f"{int((z == 0).sum())} zero points are 0")
    v1_from_v2 = ol.v2_to_v1_qzeros(t_v2["qzeros"])
    check(f"{label}: quantize(checkpoint_format='gptq') writes v2 words minus 0x11111111",
          torch.equal(t_v1_quantized["qzeros"], v1_from_v2) and torch.equal(t_v1_quantized["qweight"], t_v2["qweight"])
          and torch.equal(t_v1_quantized["scales"], t_v2["scales"]))

    z = z.clone()
    words = place_zeros_by_hand(z)
    qzeros_v2 = ol.pack(z.to(torch.int32), dim=1)
    qzeros_v1 = ol.v2_to_v1_qzeros(qzeros_v2)
    v2 = dict(t_v2, qzeros=qzeros_v2)
    v1 = dict(t_v2, qzeros=qzeros_v1)

    # The v1 words, decoded by the rule with plain Python integers.
    good, wrapped = True, 0
    z_list, v1_list, v2_list = z.tolist(), qzeros_v1.tolist(), qzeros_v2.tolist()
    for group in range(len(v1_list)):
        for word in range(len(v1_list[group])):
            stored = v1_list[group][word] & 0xFFFFFFFF
            true_word = (stored + 0x11111111) % 2 ** 32
            good &= [(true_word >> (4 * j)) & 0xF for j in range(8)] == z_list[group][8 * word:8 * word + 8]
            good &= stored == (v2_list[group][word] - 0x11111111) % 2 ** 32
            wrapped += v1_list[group][word] < 0 <= v2_list[group][word]
    check(f"{label}: every v1 word + 0x11111111 (mod 2^32) splits into the true zero points", good,
          f"{z.shape[0] * z.shape[1] // 8} words, {wrapped} of them wrap to negative int32 in v1")
    lines = ", ".join(f"g{gr} w{wd}: v2 {int(qzeros_v2[gr, wd]) & 0xFFFFFFFF:08X} -> v1 "
                      f"{int(qzeros_v1[gr, wd]) & 0xFFFFFFFF:08X}" for gr, wd in words[:4])
    check(f"{label}: hand-placed zero points of 0 survive v1 and v2", all(
        torch.equal(ol.unpack(ol.v1_to_v2_qzeros(qzeros_v1[gr:gr + 1, wd:wd + 1]), 1)[0], z[gr, 8 * wd:8 * wd + 8])
        for gr, wd in words), lines)

    # The nibble-wise reading (stored nibble + 1) must be wrong here, or this test would not test the borrow.
    nibblewise = ol.unpack(qzeros_v1, 1) + 1
    wrong = int((nibblewise != z).sum())
    check(f"{label}: the nibble-wise v1 reading differs (the borrow is exercised)", wrong > 0,
          f"{wrong} of {z.numel()} zero points would be misread")

    w_v1 = ol.dequantize(v1["qweight"], v1["qzeros"], v1["scales"], v1["g_idx"], "gptq")
    w_v2 = ol.dequantize(v2["qweight"], v2["qzeros"], v2["scales"], v2["g_idx"], "gptq_v2")
    check(f"{label}: dequantize(v1) == dequantize(v2) exactly", torch.equal(w_v1, w_v2),
          f"max |difference| {(w_v1 - w_v2).abs().max().item():.3g}")
    return v1, v2, w_v2


# ---- GPU checks ------------------------------------------------------------------------------------------------------
def gemm_checks(label, layer_tensors, group_size, w_ref, kernels, dev, gen, view=None):
    """Part c (and d): gptq_gemm against a @ w_ref in fp64, for each format, kernel and M."""
    w_ref = w_ref.to(dev)
    inputs = [torch.randn(m, K, generator=gen).to(dev, torch.float16) for m in ROWS]
    wants = [a.double() @ w_ref for a in inputs]
    deterministic = {}  # format -> outputs of the deterministic kernel
    for fmt in ("gptq", "gptq_v2"):
        t = {name: v.to(dev) for name, v in layer_tensors[fmt].items()}
        if view is not None:
            t = view(t)
        for kernel in kernels:
            try:
                layer = ol.GptqLinear(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], group_size, fmt,
                                      kernel=kernel)
            except RuntimeError as e:
                check(f"{label} {fmt:7s} {kernel:13s} layer", False, str(e).splitlines()[0])
                continue
            outs = []
            for a, want in zip(inputs, wants):
                got = None
                try:
                    got = layer(a)
                    err = rel(got, want)
                    good = err < MAX_REL_ERR and bool(torch.isfinite(got).all())
                    detail = f"relative error {err:.2e}"
                except RuntimeError as e:
                    good, detail = False, str(e).splitlines()[0]
                check(f"{label} {fmt:7s} {kernel:13s} M={a.shape[0]:2d}"
                      f"{' act-order' if layer.prepared is not None else ''}", good, detail)
                outs.append(got)
            if kernel == "deterministic":
                deterministic[fmt] = outs
    if len(deterministic) == 2:
        # The same zero points in both formats: the deterministic kernel must give the very same bits.
        same = all(o1 is not None and o2 is not None and torch.equal(o1, o2)
                   for o1, o2 in zip(deterministic["gptq"], deterministic["gptq_v2"]))
        check(f"{label} deterministic: v1 and v2 outputs are bit-identical", same)


def expect_error(name, prefix, fn):
    try:
        fn()
    except RuntimeError as e:
        msg = str(e).strip()
        return check(f"rejects {name}", msg.startswith(prefix), msg.splitlines()[0] if msg else "empty message")
    except Exception as e:  # noqa: BLE001 - any other exception is a failed check, not the end of the script
        return check(f"rejects {name}", False, f"{type(e).__name__} instead of RuntimeError: {e}")
    return check(f"rejects {name}", False, "no error raised")


def argument_checks(v2, dev):
    ops = ol.load()
    t = {name: v.to(dev) for name, v in v2.items()}
    a = torch.randn(3, K, device=dev).to(torch.float16)
    g = t["g_idx"]

    def gemm(**over):
        args = dict(t, **over)
        return ops.gptq_gemm(a, args["qweight"], args["qzeros"], args["scales"], g, GROUP_SIZE, True)

    expect_error("scales with n - 8 columns", "scales:", lambda: gemm(scales=t["scales"][:, :N - 8].contiguous()))
    expect_error("qzeros with n / 8 - 1 columns", "qzeros:", lambda: gemm(qzeros=t["qzeros"][:, 1:].contiguous()))
    expect_error("qzeros with fewer rows than scales", "qzeros:", lambda: gemm(qzeros=t["qzeros"][1:].contiguous()))
    expect_error("scales with stride(1) != 1", "scales:",
                 lambda: gemm(scales=t["scales"].t().contiguous().t()))
    expect_error("a broadcast (stride(0) == 0) multi-row scales", "scales:",
                 lambda: gemm(scales=t["scales"][:1].expand(t["scales"].shape[0], N)))
    expect_error("qzeros on the host", "qzeros", lambda: gemm(qzeros=t["qzeros"].cpu()))


def argument_checks_in_child():
    """The argument checks in a child process: an extension that crashes while raising an error (rather than raising
    RuntimeError) is then reported as a failed check instead of ending this script."""
    child = subprocess.run([sys.executable, "-X", "faulthandler", os.path.abspath(__file__), "--argument-checks-only"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = child.stdout.splitlines()
    for line in lines:
        if line.startswith(("OK  ", "FAIL")):
            print(line, flush=True)
            _results.append(line.startswith("OK"))
    if child.returncode not in (0, 1) or not any(line.startswith(("OK  ", "FAIL")) for line in lines):
        how = f"signal {-child.returncode}" if child.returncode < 0 else f"exit status {child.returncode}"
        fatal = [line for line in lines if line.startswith(("Fatal Python error", "Traceback", "RuntimeError"))]
        check("argument checks: the op raises RuntimeError (no crash)", False,
              f"the child process ended with {how}{': ' + fatal[0] if fatal else ''}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", default="all", choices=["opt4gptq", "baseline", "deterministic", "all"])
    parser.add_argument("--argument-checks-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    kernels = ["opt4gptq", "baseline", "deterministic"] if args.kernel == "all" else [args.kernel]
    torch.manual_seed(0)
    if args.argument_checks_only:  # the child of argument_checks_in_child()
        gen = torch.Generator().manual_seed(10)
        layer = ol.quantize(torch.randn(N, K, generator=gen) * 0.02, GROUP_SIZE, sym=False, checkpoint_format="gptq_v2")
        argument_checks(layer, torch.device("cuda"))
        return 1 if not all(_results) else 0

    # a + b: the layers and the host checks (no GPU needed).
    layers = {}
    for label, seed, group_size, act in (("sequential g128", 10, GROUP_SIZE, False),
                                          ("act-order  g128", 20, GROUP_SIZE, True),
                                          ("group -1       ", 30, -1, False)):
        t_v2, t_v1, _, mask = make_layer(seed, group_size, act)
        check(f"{label}: g_idx is {'an act-order permutation' if act else 'sequential'}",
              ol.is_sequential(t_v2["g_idx"], group_size) != act)
        v1, v2, w = host_checks(label, t_v2, t_v1, mask)
        layers[label] = ({"gptq": v1, "gptq_v2": v2}, group_size, w)

    if not torch.cuda.is_available():
        print("No CUDA GPU visible: the GPU checks (c, d) need one; skipped.")
        passed, failed = sum(_results), len(_results) - sum(_results)
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 77

    dev = torch.device("cuda")
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}; building the extension ...", flush=True)
    ol.load()
    gen = torch.Generator().manual_seed(1)

    # c: sequential and act-order layers, v1 and v2.
    for label in ("sequential g128", "act-order  g128"):
        tensors, group_size, w = layers[label]
        gemm_checks(label, tensors, group_size, w, kernels, dev, gen)

    # d: group-size -1 with [1, N] scales and [1, N/8] qzeros of stride (1, 1), as GPTQModel holds them.
    def single_row_strided(t):
        scales = torch.empty_strided((1, N), (1, 1), dtype=torch.float16, device=dev)
        qzeros = torch.empty_strided((1, N // 8), (1, 1), dtype=torch.int32, device=dev)
        scales.copy_(t["scales"])
        qzeros.copy_(t["qzeros"])
        assert scales.stride() == (1, 1) and qzeros.stride() == (1, 1)
        return dict(t, scales=scales, qzeros=qzeros)

    tensors, group_size, w = layers["group -1       "]
    gemm_checks("group -1 [1,N] stride (1,1)", tensors, group_size, w, kernels, dev, gen, view=single_row_strided)

    # Multi-row scales and qzeros with row strides beyond dense: column slices of wider tensors.
    def row_strided(t):
        scales = torch.zeros(t["scales"].shape[0], 2 * N, dtype=torch.float16, device=dev)[:, :N]
        qzeros = torch.zeros(t["qzeros"].shape[0], N // 4, dtype=torch.int32, device=dev)[:, :N // 8]
        scales.copy_(t["scales"])
        qzeros.copy_(t["qzeros"])
        return dict(t, scales=scales, qzeros=qzeros)

    tensors, group_size, w = layers["sequential g128"]
    gemm_checks("row-strided scales/qzeros g128", tensors, group_size, w, kernels[:1], dev, gen, view=row_strided)

    argument_checks_in_child()

    passed, failed = sum(_results), len(_results) - sum(_results)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
