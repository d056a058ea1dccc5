"""opt4gptq in PyTorch: the extension loader, a GPTQ linear layer, and a GPTQ quantizer/packer for tests.

    import opt4gptq_linear as ol
    ops = ol.load()                                  # builds the extension once (torch.utils.cpp_extension)
    layer = ol.GptqLinear(qweight, qzeros, scales, g_idx, group_size=128, checkpoint_format="gptq")
    y = layer(x)                                     # x: [..., in_features] float16 on the GPU

The tensors are the ones a GPTQ checkpoint stores (AutoGPTQ / GPTQModel layout, see docs/gptq_format.md):
qweight int32 [K/8, N], qzeros int32 [G, N/8], scales float16 [G, N], g_idx int32 [K].
"""
import os

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
_ops = None


def load(verbose=False):
    """Builds (or reuses) the extension for the GPU at hand."""
    global _ops
    if _ops is None:
        from torch.utils.cpp_extension import load as load_extension
        if "TORCH_CUDA_ARCH_LIST" not in os.environ and torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            os.environ["TORCH_CUDA_ARCH_LIST"] = f"{major}.{minor}"
        _ops = load_extension(
            name="opt4gptq_torch",
            sources=[os.path.join(_HERE, "opt4gptq_torch.cu")],
            extra_include_paths=[os.path.join(_REPO, "include")],
            extra_cflags=["-O3", "-std=c++17"],
            extra_cuda_cflags=["-O3", "-std=c++17"],
            verbose=verbose,
        )
    return _ops


def is_sequential(g_idx, group_size):
    """True when g_idx[k] == k // group_size: no act-order, no prepare step needed."""
    k = g_idx.numel()
    expected = torch.arange(k, device=g_idx.device, dtype=torch.int32) // (group_size if group_size > 0 else k)
    return bool(torch.equal(g_idx.to(torch.int32), expected))


class GptqLinear(torch.nn.Module):
    """A GPTQ 4-bit linear layer computed by opt4gptq. Act-order layers are prepared once here (load time)."""

    def __init__(self, qweight, qzeros, scales, g_idx, group_size, checkpoint_format="gptq", bias=None,
                 kernel="opt4gptq"):
        super().__init__()
        if checkpoint_format not in ("gptq", "gptq_v2"):
            raise ValueError("checkpoint_format must be 'gptq' (v1 zero points) or 'gptq_v2'")
        self.ops = load()
        self.group_size = group_size
        self.use_v2_format = checkpoint_format == "gptq_v2"
        self.kernel = kernel
        self.register_buffer("qzeros", qzeros)
        self.register_buffer("scales", scales)
        self.register_buffer("g_idx", g_idx)
        self.bias = bias
        if is_sequential(g_idx, group_size):
            self.register_buffer("qweight", qweight)
            self.prepared = None
        else:
            # The prepared buffer holds the sorted weights: the checkpoint's qweight is not needed any more; a
            # zero-stride stand-in keeps its shape (the op reads only the shape when a prepared layout is given).
            self.prepared = self.ops.gptq_prepare(qweight, g_idx, scales.shape[0])
            self.register_buffer("qweight", torch.zeros(1, dtype=torch.int32, device=qweight.device).expand(
                qweight.shape[0], qweight.shape[1]))

    def forward(self, x):
        y = self.ops.gptq_gemm(x, self.qweight, self.qzeros, self.scales, self.g_idx, self.group_size,
                               self.use_v2_format, self.prepared, self.kernel)
        return y + self.bias if self.bias is not None else y


# ---- a GPTQ quantizer and packer (round to nearest), producing exactly the checkpoint tensors -------------------------
def quantize(weight, group_size=128, sym=True, checkpoint_format="gptq", act_order=False, generator=None):
    """Quantizes an nn.Linear weight [out, in] as GPTQ stores it. Returns dict(qweight, qzeros, scales, g_idx).

    Round to nearest (no error compensation): the format is what matters here. With act_order, rows are grouped in a
    random order (GPTQ's desc_act sorts them by Hessian diagonal), so g_idx is a permutation of groups.
    """
    w = weight.detach().to(torch.float32).t().contiguous()  # [K, N]
    k, n = w.shape
    device = w.device
    gs = group_size if group_size > 0 else k
    order = torch.randperm(k, generator=generator, device="cpu").to(device) if act_order else \
        torch.arange(k, device=device)
    groups = (k + gs - 1) // gs
    g_idx = torch.empty(k, dtype=torch.int32, device=device)
    g_idx[order] = (torch.arange(k, device=device) // gs).to(torch.int32)
    maxq = 15
    scales = torch.empty(groups, n, dtype=torch.float16, device=device)
    zeros = torch.empty(groups, n, dtype=torch.int32, device=device)
    q = torch.empty(k, n, dtype=torch.int32, device=device)
    for g in range(groups):
        rows = order[g * gs:(g + 1) * gs]
        x = w[rows]
        lo = torch.clamp(x.min(0).values, max=0)
        hi = torch.clamp(x.max(0).values, min=0)
        if sym:
            hi = torch.maximum(-lo, hi)
            lo = torch.where(lo < 0, -hi, lo)
        both_zero = (lo == 0) & (hi == 0)
        lo = torch.where(both_zero, torch.full_like(lo, -1), lo)
        hi = torch.where(both_zero, torch.full_like(hi, 1), hi)
        scale = ((hi - lo) / maxq).to(torch.float16)
        s = scale.to(torch.float32)
        zero = torch.full_like(s, (maxq + 1) // 2) if sym else torch.clamp(torch.round(-lo / s), 0, maxq)
        q[rows] = torch.clamp(torch.round(x / s) + zero, 0, maxq).to(torch.int32)
        scales[g] = scale
        zeros[g] = zero.to(torch.int32)
    # Zero points of 0 are kept (an asymmetric group column with no negative weight has one): v1 stores them through the
    # whole-word subtraction, which borrows from the next nibble, exactly as the toolkits write them.
    qzeros = pack(zeros, dim=1)
    if checkpoint_format == "gptq":
        qzeros = v2_to_v1_qzeros(qzeros)
    return dict(qweight=pack(q, dim=0), qzeros=qzeros, scales=scales, g_idx=g_idx)


def pack(values, dim):
    """Packs 4-bit values (int32 tensor) 8 per int32 along `dim`, value j in bits 4j..4j+3."""
    v = values.to(torch.int64).movedim(dim, -1)
    v = v.reshape(*v.shape[:-1], v.shape[-1] // 8, 8)
    shifts = torch.arange(0, 32, 4, device=v.device, dtype=torch.int64)
    packed = ((v & 0xF) << shifts).sum(-1)
    packed = torch.where(packed >= 2 ** 31, packed - 2 ** 32, packed).to(torch.int32)
    return packed.movedim(-1, dim).contiguous()


# v1 ("gptq") zero points: the toolkits pack the true (v2) zero points into int32 words and subtract 0x11111111 from
# each whole 32-bit word (mod 2^32), so a zero point of 0 borrows from the next nibble (and one in the top nibble wraps
# the word). Readers add 0x11111111 back to the whole word before splitting it; adding 1 to each nibble is wrong there.
V1_ZERO_WORD_OFFSET = 0x11111111


def _to_int32(words):
    """int64 values taken mod 2^32, as int32 bit patterns (two's complement)."""
    w = words & 0xFFFFFFFF
    return torch.where(w >= 2 ** 31, w - 2 ** 32, w).to(torch.int32)


def v2_to_v1_qzeros(qzeros):
    """v1 qzeros words from v2 ones (true zero points): each word minus 0x11111111, mod 2^32."""
    return _to_int32(qzeros.to(torch.int64) - V1_ZERO_WORD_OFFSET)


def v1_to_v2_qzeros(qzeros):
    """v2 qzeros words (true zero points) from v1 ones: each word plus 0x11111111, mod 2^32."""
    return _to_int32(qzeros.to(torch.int64) + V1_ZERO_WORD_OFFSET)


def unpack(packed, dim):
    p = packed.to(torch.int64).movedim(dim, -1) & 0xFFFFFFFF
    shifts = torch.arange(0, 32, 4, device=p.device, dtype=torch.int64)
    v = (p.unsqueeze(-1) >> shifts) & 0xF
    v = v.reshape(*p.shape[:-1], p.shape[-1] * 8)
    return v.movedim(-1, dim)


def dequantize(qweight, qzeros, scales, g_idx, checkpoint_format="gptq", dtype=torch.float64):
    """dequant(W) [K, N] = scales[g] * (q - z[g]) with g = g_idx[k]: what the tensors mean."""
    q = unpack(qweight, 0).to(dtype)
    if checkpoint_format == "gptq":
        qzeros = v1_to_v2_qzeros(qzeros)  # whole-word add, then split: not 1 added to each nibble
    elif checkpoint_format != "gptq_v2":
        raise ValueError("checkpoint_format must be 'gptq' (v1 zero points) or 'gptq_v2'")
    z = unpack(qzeros, 1).to(dtype)
    g = g_idx.to(torch.int64)
    return scales.to(dtype)[g] * (q - z[g])
