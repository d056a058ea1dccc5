"""opt4gptq for PyTorch: 4-bit GPTQ (W4A16) GEMM ops registered with torch.library (python/README.md).

    import opt4gptq                                    # loads the extension: torch.ops.opt4gptq.*
    y = torch.ops.opt4gptq.gptq_gemm(x2d, qweight, qzeros, scales, g_idx, use_exllama, use_v2_format, 4)   # vLLM's op
    torch.ops.opt4gptq.gptq_shuffle(qweight, perm, 4)                                                    # vLLM's op
    y = opt4gptq.gemm(x, qweight, qzeros, scales, group_size=128, kernel="auto")                         # native op

Every op has a fake (meta) implementation here, so the ops trace under torch.compile(fullgraph=True) and FakeTensor
mode; the CUDA implementations are in csrc/ops.cpp.
"""
import torch

from . import _C  # noqa: F401  (the extension: its static initializers register torch.ops.opt4gptq.*)
from .nn import GptqLinear
from .quant import dequantize, pack, quantize, unpack, v1_to_v2_qzeros, v2_to_v1_qzeros

__all__ = [
    "KERNELS", "PAPER_KERNELS", "ops", "gptq_gemm", "gptq_shuffle", "prepare_act_order", "gemm", "choose_kernel",
    "act_order_buffer_bytes", "clear_cache", "cache_size", "GptqLinear", "quantize", "dequantize", "pack", "unpack",
    "v1_to_v2_qzeros", "v2_to_v1_qzeros",
]

ops = torch.ops.opt4gptq

#: Kernel names of the native op (csrc/backend.h). "auto" is the library's dispatcher: the current GPU's dispatch
#: table with the default (overflow-safe) options; "dequant_matmul" is its prefill path (the layer dequantized to fp16,
#: then torch.matmul).
KERNELS = ("auto", "baseline", "smb", "vml", "ila", "opt4gptq", "deterministic", "tensorcore",
           "tensorcore_deterministic", "deterministic_f32", "decode", "tensorcore_pipelined",
           "tensorcore_pipelined_deterministic", "dequant_matmul")
#: The paper's ablation: Baseline, one optimization each, all three.
PAPER_KERNELS = ("baseline", "smb", "vml", "ila", "opt4gptq")


def gptq_gemm(a, b_q_weight, b_gptq_qzeros, b_gptq_scales, b_g_idx, use_exllama, use_v2_format, bit):
    """vLLM's `gptq_gemm`: a [..., K] fp16 times the GPTQ layer; returns [..., N]. See python/README.md."""
    return ops.gptq_gemm(a, b_q_weight, b_gptq_qzeros, b_gptq_scales, b_g_idx, use_exllama, use_v2_format, bit)


def gptq_shuffle(q_weight, q_perm, bit):
    """vLLM's `gptq_shuffle`, in place, at load time: an empty q_perm leaves q_weight as saved; argsort(g_idx)
    reorders its rows by group. See python/README.md for the bytes."""
    ops.gptq_shuffle(q_weight, q_perm, bit)


def prepare_act_order(qweight, g_idx, num_groups):
    """The library's act-order preparation (once per layer, load time; synchronizes once): a uint8 buffer to pass to
    gemm(act_order=...). The original qweight is not needed afterwards."""
    return ops.prepare_act_order(qweight, g_idx, num_groups)


def gemm(a, qweight, qzeros, scales, act_order=None, group_size=128, use_v2_format=False, kernel="auto"):
    """C = a · dequant(W) with the kernel named `kernel` (KERNELS). Pass qweight (checkpoint layout) or act_order (a
    prepare_act_order buffer; qweight None)."""
    return ops.gemm(a, qweight, qzeros, scales, act_order, group_size, use_v2_format, kernel)


def choose_kernel(m, k, n, num_groups, act_order=False):
    """The kernel kernel="auto" runs for a call of m rows on a layer of (k, n, num_groups)."""
    return ops.choose_kernel(m, k, n, num_groups, act_order)


def act_order_buffer_bytes(k, n, num_groups):
    return ops.act_order_buffer_bytes(k, n, num_groups)


def clear_cache():
    """Drops gptq_gemm's prepared layouts of row-parallel act-order layers (use_exllama=False); returns how many. Call it
    after changing such a layer's qweight or g_idx in place through `.data` (PyTorch does not count those writes)."""
    return ops.clear_cache()


def cache_size():
    return ops.cache_size()


# ---- fake implementations: shapes only, and the checks that need no data -------------------------------------------

def _check_bits(bit):
    if bit != 4:
        raise NotImplementedError(f"bit: {bit}-bit weights are not supported: 4 is the only width with a codec in "
                                  "opt4gptq (codec/int4.hpp)")


def _no_meta_mix(op, reference, **tensors):
    """A real (non-fake) call that mixes meta and CUDA tensors would dispatch here and return an uninitialized tensor:
    old vLLM passed g_idx on the meta device for 'no act-order'. Refuse it by name."""
    if reference.device.type == "meta":
        return
    for name, t in tensors.items():
        if t is not None and t.device.type == "meta":
            raise ValueError(f"{name}: on the meta device while the other arguments are on {reference.device}; pass an "
                             f"empty CUDA tensor for a layer without act-order [{op}]")


@torch.library.register_fake("opt4gptq::gptq_gemm")
def _gptq_gemm_fake(a, b_q_weight, b_gptq_qzeros, b_gptq_scales, b_g_idx, use_exllama, use_v2_format, bit):
    _check_bits(bit)
    _no_meta_mix("opt4gptq::gptq_gemm", a, b_q_weight=b_q_weight, b_gptq_qzeros=b_gptq_qzeros,
                 b_gptq_scales=b_gptq_scales, b_g_idx=b_g_idx)
    torch._check(a.shape[-1] == b_q_weight.shape[0] * 8,
                 lambda: f"a: last dimension must be K = b_q_weight.size(0) * 8 = {b_q_weight.shape[0] * 8}, got "
                         f"{a.shape[-1]} [opt4gptq::gptq_gemm]")
    return a.new_empty((*a.shape[:-1], b_q_weight.shape[1]))


@torch.library.register_fake("opt4gptq::gptq_shuffle")
def _gptq_shuffle_fake(q_weight, q_perm, bit):
    _check_bits(bit)
    return None


@torch.library.register_fake("opt4gptq::prepare_act_order")
def _prepare_act_order_fake(qweight, g_idx, num_groups):
    # The size comes from the library (act_order_buffer_bytes), asked outside the fake mode: an op without tensor
    # arguments would otherwise be dispatched to the mode too.
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    with unset_fake_temporarily():
        nbytes = ops.act_order_buffer_bytes(int(qweight.shape[0]) * 8, int(qweight.shape[1]), int(num_groups))
    return qweight.new_empty((nbytes,), dtype=torch.uint8)


@torch.library.register_fake("opt4gptq::gemm")
def _gemm_fake(a, qweight, qzeros, scales, act_order, group_size, use_v2_format, kernel_name="auto"):
    # The schema's default ("auto") is not passed on when a traced call leaves it out: the fake needs it too. The
    # schema names it kernel_name, not kernel: Inductor lowers the op through FallbackKernel.create(kernel, *args,
    # **kwargs), and an argument called `kernel` collided with it (torch.compile: "got multiple values for argument
    # 'kernel'").
    kernel = kernel_name
    _no_meta_mix("opt4gptq::gemm", a, qweight=qweight, qzeros=qzeros, scales=scales, act_order=act_order)
    if kernel not in KERNELS:
        raise RuntimeError(f"kernel_name: must be one of {', '.join(KERNELS)}; got '{kernel}' [opt4gptq::gemm]")
    return a.new_empty((*a.shape[:-1], scales.shape[1]))
