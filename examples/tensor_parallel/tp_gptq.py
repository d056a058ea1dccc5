#!/usr/bin/env python3
"""Tensor-parallel GPTQ layers with opt4gptq inside PyTorch's distributed runtime, the way engines scale out.

    torchrun --nproc-per-node W examples/tensor_parallel/tp_gptq.py        (W = 2, 4, 8: one GPU per rank, NCCL)
    python3 examples/tensor_parallel/tp_gptq.py --simulate W                (all W ranks on one GPU, no NCCL)

For each checkpoint variant (act-order or not, v1 or v2 zero points) one layer's checkpoint tensors are made once
(seeded, identical on every rank), then each rank takes its shard exactly as an engine's loader does:
  - column-parallel (a slice of N): qweight[:, n0:n1], qzeros[:, n0/8:n1/8], scales[:, n0:n1], g_idx whole;
    the ranks' outputs are all-gathered along N;
  - row-parallel (a slice of K): qweight[k0/8:k1/8], g_idx[k0:k1] and the activations' columns k0:k1; with act-order,
    scales and qzeros stay whole (any row may be in any group) and the shard is prepared by opt4gptq (its groups now
    have uneven sizes: where other GPTQ kernels fail); without act-order the shard takes its own groups. The partial
    outputs are all-reduced (summed in fp32).
The result is checked against the unsharded opt4gptq result and the fp64 reference by relative error.
Exit status 0 when every check passes.
"""
import argparse
import os
import sys

import torch

import opt4gptq  # noqa: E402  (the Python package in python/: pip install --no-build-isolation ./python)

VARIANTS = [  # (act_order, checkpoint_format, symmetric)
    (False, "gptq", True),
    (False, "gptq_v2", False),
    (True, "gptq", True),
    (True, "gptq_v2", False),
]


def make_layer(k, n, group_size, act_order, fmt, sym, seed, device):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(n, k, generator=gen) * 0.02
    return opt4gptq.quantize(weight.to(device), group_size=group_size, sym=sym, checkpoint_format=fmt, act_order=act_order,
                       generator=gen)


def column_shard(t, rank, world):
    n = t["qweight"].shape[1]
    n0, n1 = rank * n // world, (rank + 1) * n // world
    return dict(qweight=t["qweight"][:, n0:n1].contiguous(), qzeros=t["qzeros"][:, n0 // 8:n1 // 8].contiguous(),
                scales=t["scales"][:, n0:n1].contiguous(), g_idx=t["g_idx"]), (n0, n1)


def row_shard(t, rank, world, group_size, act_order):
    k = t["qweight"].shape[0] * 8
    k0, k1 = rank * k // world, (rank + 1) * k // world
    shard = dict(qweight=t["qweight"][k0 // 8:k1 // 8].contiguous(), g_idx=t["g_idx"][k0:k1].contiguous())
    if act_order:
        shard.update(qzeros=t["qzeros"], scales=t["scales"])
    else:
        g0, g1 = k0 // group_size, k1 // group_size
        shard.update(qzeros=t["qzeros"][g0:g1].contiguous(), scales=t["scales"][g0:g1].contiguous(),
                     g_idx=(shard["g_idx"] - g0).contiguous())
    return shard, (k0, k1)


def linear(t, group_size, fmt, kernel):
    return opt4gptq.GptqLinear(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], group_size, fmt, kernel=kernel)


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def run(rank, world, device, all_gather, all_reduce, args):
    ok = True
    k_col, n_col = args.hidden, args.intermediate  # column-parallel: hidden -> intermediate
    k_row, n_row = args.intermediate, args.hidden  # row-parallel: intermediate -> hidden
    gs = args.group_size
    for i, (act, fmt, sym) in enumerate(VARIANTS):
        for form in ("column", "row"):
            k, n = (k_col, n_col) if form == "column" else (k_row, n_row)
            full = make_layer(k, n, gs, act, fmt, sym, seed=100 + i, device=device)
            x = torch.randn(args.tokens, k, generator=torch.Generator().manual_seed(7 + i)).to(device, torch.float16)
            expected = x.double() @ opt4gptq.dequantize(full["qweight"], full["qzeros"], full["scales"], full["g_idx"], fmt)
            unsharded = linear(full, gs, fmt, args.kernel)(x)
            if form == "column":
                outs = []
                for r in rank:
                    shard, _ = column_shard(full, r, world)
                    outs.append(linear(shard, gs, fmt, args.kernel)(x))
                y = all_gather(outs)
            else:
                parts = []
                for r in rank:
                    shard, (k0, k1) = row_shard(full, r, world, gs, act)
                    parts.append(linear(shard, gs, fmt, args.kernel)(x[:, k0:k1].contiguous()).float())
                y = all_reduce(parts).to(torch.float16)
            e_ref, e_unsharded = rel(y, expected), rel(y, unsharded)
            good = e_ref < 5e-3 and e_unsharded < 5e-3 and bool(torch.isfinite(y).all())
            ok &= good
            if rank[0] == 0:
                print(f"W={world} {form:6s}-parallel K={k} N={n} {'act-order' if act else 'sequential':10s} {fmt:7s}"
                      f" {'sym ' if sym else 'asym'}: vs fp64 {e_ref:.2e}, vs unsharded {e_unsharded:.2e} "
                      f"{'OK' if good else 'FAIL'}", flush=True)
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulate", type=int, default=0, metavar="W", help="run W ranks on one GPU, no NCCL")
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=8192)
    parser.add_argument("--group-size", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=13)
    parser.add_argument("--kernel", default="opt4gptq", choices=["opt4gptq", "baseline", "deterministic"])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA GPU visible: nothing to run.")
        return 77
    if args.simulate:
        world = args.simulate
        device = torch.device("cuda")
        ok = run(list(range(world)), world, device, all_gather=lambda outs: torch.cat(outs, dim=-1),
                 all_reduce=lambda parts: torch.stack(parts).sum(0), args=args)
        print(f"simulated W={world} on one GPU: {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1

    import torch.distributed as dist
    for var, value in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")):
        os.environ.setdefault(var, value)  # NVLink multicast stays off
    dist.init_process_group("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", rank))
    torch.cuda.set_device(local)
    device = torch.device("cuda", local)

    def all_gather(outs):
        pieces = [torch.empty_like(outs[0]) for _ in range(world)]
        dist.all_gather(pieces, outs[0].contiguous())
        return torch.cat(pieces, dim=-1)

    def all_reduce(parts):
        total = parts[0].clone()
        dist.all_reduce(total)
        return total

    ok = run([rank], world, device, all_gather, all_reduce, args)
    flag = torch.tensor([0 if ok else 1], device=device)
    dist.all_reduce(flag)
    if rank == 0:
        print(f"torchrun W={world} with NCCL: {'PASS' if flag.item() == 0 else 'FAIL'}")
    dist.destroy_process_group()
    return 0 if flag.item() == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
