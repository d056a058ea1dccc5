"""GPTQ 4-bit tensors in PyTorch: a round-to-nearest quantizer that writes the real checkpoint layout, the packers, and
the dequantizer that says what the tensors mean (docs/gptq_format.md).

    t = quantize(weight, group_size=128, act_order=True, generator=g)   # weight: nn.Linear layout [out, in]
    t["qweight"] int32 [K/8, N], t["qzeros"] int32 [G, N/8], t["scales"] fp16 [G, N], t["g_idx"] int32 [K]
    w = dequantize(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], "gptq")       # [K, N], fp64 by default

Round to nearest, no error compensation: the layout is what matters for kernels and engines. With act_order, rows are
grouped in a random order (GPTQ's desc_act orders them by the Hessian diagonal), so g_idx scatters each group over K,
exactly as such checkpoints do.
"""
import torch

#: v1 ("gptq") zero points: the toolkits pack the true (v2) zero points and subtract 0x11111111 from each whole 32-bit
#: word (mod 2^32), so a zero point of 0 borrows from the next nibble. Readers add it back to the whole word.
V1_ZERO_WORD_OFFSET = 0x11111111
MAXQ = 15


def quantize(weight, group_size=128, sym=True, checkpoint_format="gptq", act_order=False, generator=None):
    """Quantizes an nn.Linear weight [out, in] (any float dtype, any device) as GPTQ stores it.

    Returns dict(qweight, qzeros, scales, g_idx) on the weight's device. `generator` (a CPU torch.Generator) draws the
    act-order permutation. in_features must be a multiple of group_size (and of 8)."""
    if checkpoint_format not in ("gptq", "gptq_v2"):
        raise ValueError("checkpoint_format must be 'gptq' (v1 zero points) or 'gptq_v2'")
    w = weight.detach().to(torch.float32).t().contiguous()  # [K, N]
    k, n = w.shape
    device = w.device
    gs = group_size if group_size > 0 else k
    if k % gs != 0 or k % 8 != 0 or n % 8 != 0:
        raise ValueError(f"in_features {k} must be a multiple of group_size {gs} and of 8; out_features {n} of 8")
    groups = k // gs
    order = (torch.randperm(k, generator=generator).to(device) if act_order
             else torch.arange(k, device=device))
    # Group g holds rows order[g*gs:(g+1)*gs]; g_idx[row] says which group a row is in.
    g_idx = torch.empty(k, dtype=torch.int32, device=device)
    g_idx[order] = (torch.arange(k, device=device) // gs).to(torch.int32)

    x = w[order].view(groups, gs, n)
    lo = x.amin(dim=1).clamp(max=0)
    hi = x.amax(dim=1).clamp(min=0)
    if sym:
        hi = torch.maximum(-lo, hi)
        lo = torch.where(lo < 0, -hi, lo)
    both_zero = (lo == 0) & (hi == 0)
    lo = torch.where(both_zero, torch.full_like(lo, -1), lo)
    hi = torch.where(both_zero, torch.full_like(hi, 1), hi)
    scales = ((hi - lo) / MAXQ).to(torch.float16)  # [G, N]
    s = scales.to(torch.float32)
    zeros = torch.full_like(s, (MAXQ + 1) // 2) if sym else torch.clamp(torch.round(-lo / s), 0, MAXQ)
    q_sorted = torch.clamp(torch.round(x / s[:, None, :]) + zeros[:, None, :], 0, MAXQ).to(torch.int32)
    q = torch.empty(k, n, dtype=torch.int32, device=device)
    q[order] = q_sorted.view(k, n)

    qzeros = pack(zeros.to(torch.int32), dim=1)  # true (v2) zero points
    if checkpoint_format == "gptq":
        qzeros = v2_to_v1_qzeros(qzeros)
    return dict(qweight=pack(q, dim=0), qzeros=qzeros, scales=scales, g_idx=g_idx)


def _to_int32(words):
    """int64 values taken mod 2^32, as int32 bit patterns (two's complement)."""
    w = words & 0xFFFFFFFF
    return torch.where(w >= 2 ** 31, w - 2 ** 32, w).to(torch.int32)


def pack(values, dim):
    """Packs 4-bit values (an integer tensor) 8 per int32 along `dim`: value j of a word in bits 4j..4j+3."""
    v = values.to(torch.int64).movedim(dim, -1)
    v = v.reshape(*v.shape[:-1], v.shape[-1] // 8, 8)
    shifts = torch.arange(0, 32, 4, device=v.device, dtype=torch.int64)
    return _to_int32(((v & 0xF) << shifts).sum(-1)).movedim(-1, dim).contiguous()


def unpack(packed, dim):
    """The 4-bit values (int64) of `packed`, 8 per word along `dim`."""
    p = packed.to(torch.int64).movedim(dim, -1) & 0xFFFFFFFF
    shifts = torch.arange(0, 32, 4, device=p.device, dtype=torch.int64)
    v = (p.unsqueeze(-1) >> shifts) & 0xF
    return v.reshape(*p.shape[:-1], p.shape[-1] * 8).movedim(-1, dim)


def v2_to_v1_qzeros(qzeros):
    """v1 qzeros words from v2 ones (true zero points): each word minus 0x11111111, mod 2^32."""
    return _to_int32(qzeros.to(torch.int64) - V1_ZERO_WORD_OFFSET)


def v1_to_v2_qzeros(qzeros):
    """v2 qzeros words (true zero points) from v1 ones: each word plus 0x11111111, mod 2^32 (not 1 per nibble)."""
    return _to_int32(qzeros.to(torch.int64) + V1_ZERO_WORD_OFFSET)


#: The largest finite float16: a bf16 scale beyond it becomes inf in float16.
FP16_MAX = 65504.0


def scales_to_fp16(scales, name="scales"):
    """The fp16 scales the kernels read, from a checkpoint's float16 or bfloat16 ones (GPTQModel stores bf16 scales
    for bf16 models): once, at load time, instead of the ops' per-call conversion (one small kernel per call). float16
    scales come back as they are. Every bf16 value in [2^-17, 65504] is exact in float16 (8 significant bits of 11;
    below 2^-14 as a subnormal), so the outputs are those of the bf16 scales; smaller ones lose bits (below 2^-25 they
    become 0). Raises ValueError naming `name` when a scale is beyond float16's range (|s| > 65504: it would become
    inf, and its group's outputs inf or NaN). Synchronizes once (the check reads a count back)."""
    if scales.dtype == torch.float16:
        return scales
    if scales.dtype != torch.bfloat16:
        raise TypeError(f"{name}: must be float16 or bfloat16, got {str(scales.dtype).replace('torch.', '')}")
    beyond = int((scales.abs() > FP16_MAX).sum())  # NaN compares false: a NaN scale stays NaN, as it was
    if beyond:
        largest = float(scales.abs().max())
        raise ValueError(f"{name}: {beyond} bfloat16 scale(s) beyond float16's range (|s| > 65504; the largest is "
                         f"{largest:.6g}): the kernels read float16 scales, so this layer cannot run on them")
    return scales.to(torch.float16)


def dequantize(qweight, qzeros, scales, g_idx, checkpoint_format="gptq", dtype=torch.float64):
    """dequant(W) [K, N] = scales[g] * (q - z[g]) with g = g_idx[k], in `dtype`: what the tensors mean."""
    if checkpoint_format == "gptq":
        qzeros = v1_to_v2_qzeros(qzeros)
    elif checkpoint_format != "gptq_v2":
        raise ValueError("checkpoint_format must be 'gptq' (v1 zero points) or 'gptq_v2'")
    q = unpack(qweight, 0).to(dtype)
    z = unpack(qzeros, 1).to(dtype)
    g = g_idx.to(torch.int64)
    return scales.to(dtype)[g] * (q - z[g])
