#!/usr/bin/env python3
"""Engine integration check: a small randomly initialised LLaMA-style decoder block whose linear layers are GPTQ 4-bit
layers run by opt4gptq (the Python package in python/: `pip install --no-build-isolation ./python` first), against
PyTorch's own computation on the dequantized weights.

    python3 examples/torch_extension/transformer_block.py [--kernel opt4gptq|baseline|deterministic|all] [--tokens 10]

Layers: fused qkv (act-order, v1 zeros, symmetric, groups of 128), o (v2 zeros, asymmetric, 128), fused gate_up
(act-order, v2, asymmetric, groups of 64), down (act-order, v1, symmetric, 128). Checks, per kernel:
  1. every GptqLinear against torch.matmul on its dequantized weight in fp64: relative error < 5e-3;
  2. the block's output against the same block computed by PyTorch in fp64 with the dequantized weights: < 2e-2
     (the opt4gptq block keeps fp16 activations, norms and attention, as an engine does).
Exit status 0 when every check passes.
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

import opt4gptq  # noqa: E402  (the package: python/README.md)


class Block(torch.nn.Module):
    """RMSNorm -> fused qkv -> causal attention -> o -> residual -> RMSNorm -> fused gate_up -> SiLU -> down -> residual."""

    def __init__(self, qkv, o, gate_up, down, norm1, norm2, heads):
        super().__init__()
        self.qkv, self.o, self.gate_up, self.down = qkv, o, gate_up, down
        self.norm1, self.norm2, self.heads = norm1, norm2, heads

    @staticmethod
    def rms_norm(x, weight, eps=1e-6):
        xf = x.to(torch.float32) if x.dtype == torch.float16 else x  # fp16 in fp32, the fp64 reference in fp64
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        return (y * weight.to(xf.dtype)).to(x.dtype)

    def forward(self, x):  # x: [batch, seq, hidden]
        b, s, h = x.shape
        qkv = self.qkv(self.rms_norm(x, self.norm1))
        q, k, v = qkv.view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(attn.transpose(1, 2).reshape(b, s, h))
        gate, up = self.gate_up(self.rms_norm(x, self.norm2)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class DenseLinear(torch.nn.Module):
    def __init__(self, weight_kn):
        super().__init__()
        self.weight = weight_kn  # [K, N]

    def forward(self, x):
        return x.to(self.weight.dtype) @ self.weight


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", default="all", choices=["opt4gptq", "baseline", "deterministic", "all"])
    parser.add_argument("--tokens", type=int, default=10, help="sequence length (batch 2): M = 2 * tokens")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=2816)
    parser.add_argument("--heads", type=int, default=8)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA GPU visible: the engine-integration check needs one.")
        return 77
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    dev = torch.device("cuda")
    h, inter = args.hidden, args.intermediate
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, opt4gptq from {opt4gptq.__file__}",
          flush=True)

    # Self-check of the packer: pack/unpack round trip against hand-made words.
    vals = torch.arange(8, dtype=torch.int32).repeat(3, 1).t().contiguous()  # [8, 3]: row j holds j
    packed = opt4gptq.pack(vals, dim=0)
    assert packed.shape == (1, 3) and int(packed[0, 0]) == 0x76543210, "pack: nibble j must hold row j"
    assert torch.equal(opt4gptq.unpack(packed, 0), vals.to(torch.int64)), "unpack(pack(x)) != x"
    # v1 zero points: the whole word minus 0x11111111 (mod 2^32), so a zero point of 0 borrows from the next nibble.
    v2_words = torch.tensor([[0x76543210, 0x00000000, 0x0FFFFFFF]], dtype=torch.int32)
    v1_words = opt4gptq.v2_to_v1_qzeros(v2_words)
    assert [int(w) & 0xFFFFFFFF for w in v1_words[0]] == [0x654320FF, 0xEEEEEEEF, 0xFEEEEEEE], "v1 zero words"
    assert torch.equal(opt4gptq.v1_to_v2_qzeros(v1_words), v2_words), "v1 -> v2 zero words"

    specs = {  # name: (in, out, group_size, sym, format, act_order)
        "qkv": (h, 3 * h, 128, True, "gptq", True),
        "o": (h, h, 128, False, "gptq_v2", False),
        "gate_up": (h, 2 * inter, 64, False, "gptq_v2", True),
        "down": (inter, h, 128, True, "gptq", True),
    }
    tensors, dequant = {}, {}
    for name, (k, n, gs, sym, fmt, act) in specs.items():
        weight = torch.randn(n, k, generator=gen) * 0.02  # nn.Linear layout [out, in]
        t = opt4gptq.quantize(weight.to(dev), group_size=gs, sym=sym, checkpoint_format=fmt, act_order=act, generator=gen)
        tensors[name] = t
        dequant[name] = opt4gptq.dequantize(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], fmt)  # [K, N] fp64
        assert torch.equal(t["g_idx"], torch.arange(k, device=dev, dtype=torch.int32) // gs) == (not act)
    norm1 = (1 + 0.1 * torch.randn(h, generator=gen)).to(dev, torch.float16)
    norm2 = (1 + 0.1 * torch.randn(h, generator=gen)).to(dev, torch.float16)
    x = torch.randn(2, args.tokens, h, generator=gen).to(dev, torch.float16)

    reference_block = Block(*(DenseLinear(dequant[n]) for n in specs), norm1.double(), norm2.double(), args.heads)
    with torch.no_grad():
        expected = reference_block(x.double())

    kernels = ["opt4gptq", "baseline", "deterministic"] if args.kernel == "all" else [args.kernel]
    ok = True
    for kernel in kernels:
        layers = {name: opt4gptq.GptqLinear(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], specs[name][2],
                                      specs[name][4], kernel=kernel) for name, t in tensors.items()}
        for name, layer in layers.items():
            a = torch.randn(2 * args.tokens, specs[name][0], generator=gen).to(dev, torch.float16)
            got = layer(a).double()
            want = a.double() @ dequant[name]
            err = ((got - want).norm() / want.norm()).item()
            good = err < 5e-3 and torch.isfinite(got).all().item()
            ok &= good
            print(f"{kernel:13s} {name:8s} [{a.shape[0]} x {specs[name][0]}] x [{specs[name][0]} x {specs[name][1]}]"
                  f"{' act-order' if layer.prepared is not None else ''}: relative error {err:.2e} "
                  f"{'OK' if good else 'FAIL'}")
        block = Block(layers["qkv"], layers["o"], layers["gate_up"], layers["down"], norm1, norm2, args.heads)
        with torch.no_grad():
            got = block(x)
        err = ((got.double() - expected).norm() / expected.norm()).item()
        good = err < 2e-2 and torch.isfinite(got).all().item()
        ok &= good
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        with torch.no_grad():
            for _ in range(3):
                block(x)
            start.record()
            for _ in range(20):
                block(x)
            stop.record()
        torch.cuda.synchronize()
        print(f"{kernel:13s} block output vs PyTorch fp64 on the dequantized weights: relative error {err:.2e} "
              f"{'OK' if good else 'FAIL'}   ({start.elapsed_time(stop) / 20 * 1000:.0f} us per block forward)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
