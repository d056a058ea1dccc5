#!/usr/bin/env python3
"""Bad inputs to the ops, one case each: every case must raise the expected exception with a message that starts with
the name of the argument at fault, and nothing may crash, hang or read out of bounds.

    python3 bad_input_cases.py --case NAME   one case in this process (the pytest suite runs one subprocess per case)
    python3 bad_input_cases.py --all         every case, then valid calls of every path, checked against fp64, in this
                                             process: what `compute-sanitizer --tool memcheck` runs (tools/)
    python3 bad_input_cases.py --list

Prints one line per case ("OK name: message" or "FAIL name: why"); exit status 0 when all behaved, 1 otherwise. Many
messages hold numbers (sizes, strides): the messages that once killed extensions on the H200 machine (signal 11).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opt4gptq  # noqa: E402
from helpers import REL_ERR_BOUND, activations, make_layer, rel_err  # noqa: E402

ops = torch.ops.opt4gptq
K, N, GS = 256, 128, 128  # a small layer: 2 groups
CASES = {}  # name -> (argument the message must start with, exception type or None for "must succeed", function)
DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16"}


def case(name, arg, exc=RuntimeError):
    def register(fn):
        CASES[name] = (arg, exc, fn)
        return fn
    return register


class Ctx:
    """A valid layer and call; each case breaks one thing."""

    def __init__(self):
        self.t, _ = make_layer(K, N, GS, act_order=False, seed=3)
        self.ta, _ = make_layer(K, N, GS, act_order=True, seed=4)
        self.a = activations(4, K)
        self.empty = torch.empty(0, dtype=torch.int32, device="cuda")

    def gemm(self, a=None, qweight=None, qzeros=None, scales=None, g_idx=None, use_exllama=True, v2=False, bit=4):
        t = self.t
        return ops.gptq_gemm(self.a if a is None else a, t["qweight"] if qweight is None else qweight,
                             t["qzeros"] if qzeros is None else qzeros, t["scales"] if scales is None else scales,
                             self.empty if g_idx is None else g_idx, use_exllama, v2, bit)

    def native(self, **over):
        args = dict(a=self.a, qweight=self.t["qweight"], qzeros=self.t["qzeros"], scales=self.t["scales"],
                    act_order=None, group_size=GS, use_v2_format=False, kernel="auto")
        args.update(over)
        return ops.gemm(args["a"], args["qweight"], args["qzeros"], args["scales"], args["act_order"],
                        args["group_size"], args["use_v2_format"], args["kernel"])


def other_device():
    return torch.device("cuda", 1) if torch.cuda.device_count() > 1 else torch.device("cpu")


# ---- gptq_gemm ---------------------------------------------------------------------------------------------------
@case("bit_3", "bit", NotImplementedError)
def _(c): c.gemm(bit=3)
@case("bit_8", "bit", NotImplementedError)
def _(c): c.gemm(bit=8)
@case("a_float32", "a")
def _(c): c.gemm(a=c.a.float())
@case("a_float64", "a")
def _(c): c.gemm(a=c.a.double())
@case("a_bfloat16_runs", None, None)
def _(c):
    out = c.gemm(a=c.a.bfloat16())
    assert out.shape == (4, N) and out.dtype == torch.bfloat16, f"got {tuple(out.shape)} {out.dtype}"
@case("a_bfloat16_scales_float32", "b_gptq_scales")
def _(c): c.gemm(a=c.a.bfloat16(), scales=c.t["scales"].float())
@case("scales_bfloat16_runs", None, None)
def _(c):
    for a in (c.a, c.a.bfloat16()):
        out = c.gemm(a=a, scales=c.t["scales"].bfloat16())
        assert out.dtype == a.dtype and torch.isfinite(out).all(), f"got {out.dtype}"
@case("scales_bfloat16_not_contiguous_along_n", "b_gptq_scales")
def _(c): c.gemm(scales=c.t["scales"].bfloat16().t().contiguous().t())
@case("scales_bfloat16_on_other_device", "b_gptq_scales")
def _(c): c.gemm(scales=c.t["scales"].bfloat16().to(other_device()))
@case("a_on_other_device", "a")
def _(c): c.gemm(a=c.a.to(other_device()))
@case("a_wrong_k", "a")
def _(c): c.gemm(a=c.a[:, :K - 8].contiguous())
@case("a_scalar", "a")
def _(c): c.gemm(a=c.a[0, 0])
@case("qweight_int64", "b_q_weight")
def _(c): c.gemm(qweight=c.t["qweight"].long())
@case("qweight_on_other_device", "b_q_weight")
def _(c): c.gemm(qweight=c.t["qweight"].to(other_device()))
@case("qweight_1d", "b_q_weight")
def _(c): c.gemm(qweight=c.t["qweight"].flatten())
@case("qweight_columns_strided", "b_q_weight")
def _(c): c.gemm(qweight=c.t["qweight"].t().contiguous().t())
@case("qweight_misaligned", "b_q_weight")
def _(c):
    wide = torch.zeros(K // 8, N + 8, dtype=torch.int32, device="cuda")
    view = wide[:, 1:N + 1]  # 4 bytes past a 16-byte boundary
    view.copy_(c.t["qweight"])
    c.gemm(qweight=view)
@case("n_not_multiple_of_8", "b_q_weight")
def _(c): c.gemm(qweight=c.t["qweight"][:, :N - 4].contiguous(), scales=c.t["scales"][:, :N - 4].contiguous())
@case("scales_float32", "b_gptq_scales")
def _(c): c.gemm(scales=c.t["scales"].float())
@case("scales_wrong_columns", "b_gptq_scales")
def _(c): c.gemm(scales=c.t["scales"][:, :N - 8].contiguous())
@case("scales_not_contiguous_along_n", "b_gptq_scales")
def _(c): c.gemm(scales=c.t["scales"].t().contiguous().t())
@case("scales_broadcast_rows", "b_gptq_scales")
def _(c): c.gemm(scales=c.t["scales"][:1].expand(2, N))
@case("scales_on_other_device", "b_gptq_scales")
def _(c): c.gemm(scales=c.t["scales"].to(other_device()))
@case("qzeros_fewer_rows_than_groups", "b_gptq_qzeros")
def _(c): c.gemm(qzeros=c.t["qzeros"][:1].contiguous())
@case("qzeros_wrong_columns", "b_gptq_qzeros")
def _(c): c.gemm(qzeros=c.t["qzeros"][:, 1:].contiguous())
@case("qzeros_not_contiguous_along_n", "b_gptq_qzeros")
def _(c): c.gemm(qzeros=c.t["qzeros"].t().contiguous().t())
@case("qzeros_float", "b_gptq_qzeros")
def _(c): c.gemm(qzeros=c.t["qzeros"].float())
@case("groups_do_not_divide_k", "b_gptq_scales")
def _(c):
    c.gemm(scales=c.t["scales"][:1].repeat(3, 1), qzeros=c.t["qzeros"][:1].repeat(3, 1))
@case("group_size_not_multiple_of_8", "b_gptq_scales")
def _(c):  # K / 64 groups = 4 rows per group
    c.gemm(scales=c.t["scales"][:1].repeat(64, 1), qzeros=c.t["qzeros"][:1].repeat(64, 1))
@case("g_idx_wrong_length", "b_g_idx")
def _(c): c.gemm(g_idx=torch.argsort(c.ta["g_idx"])[:K - 8].int())
@case("g_idx_int64", "b_g_idx")
def _(c): c.gemm(g_idx=torch.argsort(c.ta["g_idx"]))
@case("g_idx_on_other_device", "b_g_idx")
def _(c): c.gemm(g_idx=c.ta["g_idx"].to(other_device()), use_exllama=False)
@case("g_idx_out_of_range", "b_g_idx")
def _(c):
    g = c.ta["g_idx"].clone()
    g[17] = 2  # 2 groups: valid entries are 0 and 1
    c.gemm(qweight=c.ta["qweight"], g_idx=g, use_exllama=False)
@case("g_idx_negative", "b_g_idx")
def _(c):
    g = c.ta["g_idx"].clone()
    g[200] = -1
    c.gemm(qweight=c.ta["qweight"], g_idx=g, use_exllama=False)
@case("m_zero", None, None)
def _(c):
    out = c.gemm(a=c.a[:0])
    assert out.shape == (0, N) and out.dtype == torch.float16, f"got {tuple(out.shape)} {out.dtype}"
@case("m_zero_3d", None, None)
def _(c):
    out = c.gemm(a=torch.empty(2, 0, K, dtype=torch.float16, device="cuda"))
    assert out.shape == (2, 0, N), f"got {tuple(out.shape)}"
@case("m_zero_bfloat16", None, None)
def _(c):
    out = c.gemm(a=c.a[:0].bfloat16(), scales=c.t["scales"].bfloat16())
    assert out.shape == (0, N) and out.dtype == torch.bfloat16, f"got {tuple(out.shape)} {out.dtype}"


# ---- gptq_shuffle ------------------------------------------------------------------------------------------------
@case("shuffle_bit_2", "bit", NotImplementedError)
def _(c): ops.gptq_shuffle(c.ta["qweight"].clone(), torch.argsort(c.ta["g_idx"]).int(), 2)
@case("shuffle_perm_not_a_permutation", "q_perm")
def _(c):
    perm = torch.argsort(c.ta["g_idx"]).int()
    perm[5] = perm[6]
    ops.gptq_shuffle(c.ta["qweight"].clone(), perm, 4)
@case("shuffle_perm_out_of_range", "q_perm")
def _(c):
    perm = torch.argsort(c.ta["g_idx"]).int()
    perm[0] = K
    ops.gptq_shuffle(c.ta["qweight"].clone(), perm, 4)
@case("shuffle_perm_wrong_length", "q_perm")
def _(c): ops.gptq_shuffle(c.ta["qweight"].clone(), torch.arange(K - 8, dtype=torch.int32, device="cuda"), 4)
@case("shuffle_qweight_float", "q_weight")
def _(c): ops.gptq_shuffle(c.ta["qweight"].float(), torch.argsort(c.ta["g_idx"]).int(), 4)
@case("shuffle_perm_on_other_device", "q_perm")
def _(c): ops.gptq_shuffle(c.ta["qweight"].clone(), torch.argsort(c.ta["g_idx"]).int().to(other_device()), 4)


# ---- the native ops ----------------------------------------------------------------------------------------------
@case("gemm_unknown_kernel", "kernel_name")
def _(c): c.native(kernel="fastest")
@case("gemm_group_size_12", "group_size")
def _(c): c.native(group_size=12)
@case("gemm_group_size_does_not_divide_k", "group_size")
def _(c): c.native(group_size=96)
@case("gemm_scales_rows_not_k_over_group_size", "scales")
def _(c): c.native(group_size=64)
@case("gemm_qweight_and_act_order", "qweight")
def _(c):
    buffer = ops.prepare_act_order(c.ta["qweight"], c.ta["g_idx"], 2)
    c.native(qweight=c.ta["qweight"], act_order=buffer)
@case("gemm_neither_qweight_nor_act_order", "qweight")
def _(c): c.native(qweight=None)
@case("gemm_act_order_of_a_smaller_layer", "act_order")
def _(c):
    small, _ = make_layer(128, N, 64, act_order=True, seed=5)
    buffer = ops.prepare_act_order(small["qweight"], small["g_idx"], 2)
    c.native(qweight=None, act_order=buffer, scales=c.ta["scales"], qzeros=c.ta["qzeros"])
@case("gemm_act_order_view_misaligned", "act_order")
def _(c):
    buffer = ops.prepare_act_order(c.ta["qweight"], c.ta["g_idx"], 2)
    padded = torch.zeros(buffer.numel() + 64, dtype=torch.uint8, device="cuda")
    padded[16:16 + buffer.numel()].copy_(buffer)
    c.native(qweight=None, act_order=padded[16:], scales=c.ta["scales"], qzeros=c.ta["qzeros"])
@case("prepare_g_idx_out_of_range", "g_idx")
def _(c):
    g = c.ta["g_idx"].clone()
    g[3] = 7
    ops.prepare_act_order(c.ta["qweight"], g, 2)
@case("prepare_num_groups_zero", "num_groups")
def _(c): ops.prepare_act_order(c.ta["qweight"], c.ta["g_idx"], 0)
@case("prepare_g_idx_wrong_length", "g_idx")
def _(c): ops.prepare_act_order(c.ta["qweight"], c.ta["g_idx"][:K // 2].contiguous(), 2)


# ---- bf16 (activations, scales) -----------------------------------------------------------------------------------
def _refuse_bf16(kernel):
    @case(f"gemm_bfloat16_{kernel}", "kernel_name", NotImplementedError)
    def _(c): c.native(a=c.a.bfloat16(), kernel=kernel)


for _kernel in opt4gptq.KERNELS:
    if _kernel not in opt4gptq.BF16_KERNELS:  # the fp16-chain kernels: no bf16 build
        _refuse_bf16(_kernel)


@case("gemm_bfloat16_scales_float32", "scales")
def _(c): c.native(a=c.a.bfloat16(), scales=c.t["scales"].float(), kernel="tensorcore")
@case("gemm_a_float32", "a")
def _(c): c.native(a=c.a.float(), kernel="deterministic_f32")
@case("choose_kernel_bad_dtype", "dtype")
def _(c): ops.choose_kernel(1, K, N, 2, False, "float32")
@case("scales_to_fp16_beyond_fp16", "scales", ValueError)
def _(c):
    s = c.t["scales"].bfloat16()
    s[0, 3] = 70000.0  # rounds to 70144 in bf16: beyond fp16's 65504
    opt4gptq.scales_to_fp16(s)
@case("gptq_linear_bfloat16_scales_beyond_fp16", "scales", ValueError)
def _(c):
    s = c.t["scales"].bfloat16()
    s[1, 0] = -1e5
    opt4gptq.GptqLinear(c.t["qweight"], c.t["qzeros"], s, c.t["g_idx"], GS)
@case("scales_to_fp16_float32", "scales", TypeError)
def _(c): opt4gptq.scales_to_fp16(c.t["scales"].float())


def run_case(name, ctx):
    """Returns (ok, line)."""
    arg, exc, fn = CASES[name]
    try:
        fn(ctx)
        torch.cuda.synchronize()  # an asynchronous fault would surface here
    except Exception as e:  # noqa: BLE001 - any exception is judged below
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if exc is None:
            return False, f"FAIL {name}: raised {type(e).__name__}: {msg}"
        if not isinstance(e, exc):
            return False, f"FAIL {name}: raised {type(e).__name__} instead of {exc.__name__}: {msg}"
        if not msg.startswith(f"{arg}:"):
            return False, f"FAIL {name}: the message does not start with '{arg}:': {msg}"
        try:
            torch.cuda.synchronize()
        except Exception as e2:  # noqa: BLE001
            return False, f"FAIL {name}: CUDA error after the exception: {e2}"
        return True, f"OK   {name}: {type(e).__name__}: {msg}"
    if exc is not None:
        return False, f"FAIL {name}: no exception (expected {exc.__name__} naming '{arg}')"
    return True, f"OK   {name}: succeeded as it should"


def valid_calls(ctx):
    """Every path with valid inputs, against fp64: under memcheck these show that valid calls read in bounds too. bf16
    (activations and scales; the kernels with a bf16 build) on v1 layers: the zero-point format does not depend on the
    type, and memcheck's time is counted."""
    results = []
    for dtype, formats in ((torch.float16, ("gptq", "gptq_v2")), (torch.bfloat16, ("gptq",))):
        for act in (False, True):
            for fmt in formats:
                results += valid_calls_of(ctx, dtype, act, fmt)
    torch.cuda.synchronize()
    return results


def valid_calls_of(ctx, dtype, act, fmt):
    """valid_calls() for one element type (of activations and scales), act-order or not, zero-point format."""
    results = []
    t, w = make_layer(K, N, GS, act_order=act, fmt=fmt, sym=(fmt == "gptq"), seed=11, scales_dtype=dtype)
    bound = 5e-3 if dtype == torch.float16 else REL_ERR_BOUND[dtype]
    for m in (1, 9):
        a = activations(m, K, seed=m, dtype=dtype)
        want = a.double() @ w
        outs = {}
        for kernel in opt4gptq.KERNELS if dtype == torch.float16 else opt4gptq.BF16_KERNELS:
            if act:
                buffer = ops.prepare_act_order(t["qweight"], t["g_idx"], t["scales"].shape[0])
                outs[kernel] = ops.gemm(a, None, t["qzeros"], t["scales"], buffer, GS, fmt == "gptq_v2", kernel)
            else:
                outs[kernel] = ops.gemm(a, t["qweight"], t["qzeros"], t["scales"], None, GS, fmt == "gptq_v2",
                                        kernel)
        # the vLLM paths
        perm = torch.argsort(t["g_idx"]).int() if act else ctx.empty
        qw = t["qweight"].clone()
        ops.gptq_shuffle(qw, perm, 4)
        outs["gptq_gemm"] = ops.gptq_gemm(a, qw, t["qzeros"], t["scales"], perm, True, fmt == "gptq_v2", 4)
        if act:
            outs["gptq_gemm_unused"] = ops.gptq_gemm(a, t["qweight"], t["qzeros"], t["scales"], t["g_idx"],
                                                     False, fmt == "gptq_v2", 4)
        for name, out in outs.items():
            err = rel_err(out, want)
            ok = err < bound and out.dtype == dtype
            results.append((ok, f"{'OK  ' if ok else 'FAIL'} valid {name} {DTYPE_NAMES[dtype]} "
                                f"act_order={act} {fmt} M={m}: relative error {err:.2e}"))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--case")
    group.add_argument("--all", action="store_true")
    group.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if args.case and args.case not in CASES:
        print(f"unknown case {args.case!r}")
        return 2
    ctx = Ctx()
    names = [args.case] if args.case else list(CASES)
    results = [run_case(name, ctx) for name in names]
    if args.all:
        results += valid_calls(ctx)
    for _, line in results:
        print(line, flush=True)
    failed = sum(not ok for ok, _ in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
