"""opt4gptq for PyTorch: 4-bit GPTQ (W4A16) GEMM ops registered with torch.library (python/README.md).

    import opt4gptq                                    # loads the extension: torch.ops.opt4gptq.*
    y = torch.ops.opt4gptq.gptq_gemm(x2d, qweight, qzeros, scales, g_idx, use_exllama, use_v2_format, 4)   # vLLM's op
    torch.ops.opt4gptq.gptq_shuffle(qweight, perm, 4)                                                    # vLLM's op
    y = opt4gptq.gemm(x, qweight, qzeros, scales, group_size=128, kernel="auto")                         # native op

Activations are float16 or bfloat16 and the output has their dtype (a bfloat16 call runs the bf16 build of its kernel:
BF16_KERNELS); scales are float16 or bfloat16 (bf16 ones are converted to fp16 per call; scales_to_fp16 does it once).
Every op has a fake (meta) implementation here, so the ops trace under torch.compile(fullgraph=True) and FakeTensor
mode; the CUDA implementations are in csrc/ops.cpp.
"""
import torch

from . import _C  # noqa: F401  (the extension: its static initializers register torch.ops.opt4gptq.*)
from .nn import GptqLinear
from .quant import dequantize, pack, quantize, scales_to_fp16, unpack, v1_to_v2_qzeros, v2_to_v1_qzeros

__all__ = [
    "KERNELS", "PAPER_KERNELS", "BF16_KERNELS", "ops", "gptq_gemm", "gptq_shuffle", "prepare_act_order", "gemm",
    "choose_kernel", "act_order_buffer_bytes", "clear_cache", "cache_size", "GptqLinear", "quantize", "dequantize",
    "pack", "unpack", "v1_to_v2_qzeros", "v2_to_v1_qzeros", "scales_to_fp16",
]

ops = torch.ops.opt4gptq

#: Kernel names of the native op (csrc/backend.h). "auto" is the library's dispatcher: the current GPU's dispatch
#: table with the default (overflow-safe) options; "dequant_matmul" is its prefill path (the layer dequantized to A's
#: dtype, then torch.matmul).
KERNELS = ("auto", "baseline", "smb", "vml", "ila", "opt4gptq", "deterministic", "tensorcore",
           "tensorcore_deterministic", "deterministic_f32", "decode", "tensorcore_pipelined",
           "tensorcore_pipelined_deterministic", "dequant_matmul")
#: The paper's ablation: Baseline, one optimization each, all three.
PAPER_KERNELS = ("baseline", "smb", "vml", "ila", "opt4gptq")
#: The kernels a bfloat16 `a` can name (csrc/backend.h's kBf16Kernels): each runs its bf16 build (the library's
#: presets::Bf16Deterministic for deterministic_f32, Bf16Decode, the Bf16TensorCore* presets; dequant_matmul
#: dequantizes into bf16), and "auto" chooses among them. The fp16-chain kernels (PAPER_KERNELS and "deterministic")
#: have no bf16 build: a bfloat16 call naming one raises NotImplementedError.
BF16_KERNELS = ("auto", "deterministic_f32", "decode", "tensorcore", "tensorcore_deterministic",
                "tensorcore_pipelined", "tensorcore_pipelined_deterministic", "dequant_matmul")


def gptq_gemm(a, b_q_weight, b_gptq_qzeros, b_gptq_scales, b_g_idx, use_exllama, use_v2_format, bit):
    """vLLM's `gptq_gemm`: a [..., K] (float16 or bfloat16) times the GPTQ layer; returns [..., N] of a's dtype. See
    python/README.md."""
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
    """C = a · dequant(W) with the kernel named `kernel` (KERNELS; BF16_KERNELS for a bfloat16 `a`). Pass qweight
    (checkpoint layout) or act_order (a prepare_act_order buffer; qweight None). C has a's dtype."""
    return ops.gemm(a, qweight, qzeros, scales, act_order, group_size, use_v2_format, kernel)


def choose_kernel(m, k, n, num_groups, act_order=False, dtype=torch.float16):
    """The kernel kernel="auto" runs for a call of m rows on a layer of (k, n, num_groups) with activations of `dtype`
    (torch.float16 or torch.bfloat16, or their names)."""
    return ops.choose_kernel(m, k, n, num_groups, act_order, _dtype_name(dtype))


def _dtype_name(dtype):
    """The op's `str dtype` for a torch.dtype ("float16" for torch.float16, ...); a string is passed on as it is."""
    return str(dtype).replace("torch.", "") if isinstance(dtype, torch.dtype) else dtype


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


def _check_half_or_bf16(op, **tensors):
    """The dtype checks of csrc/ops.cpp (Args::half_or_bf16), so that a traced call fails as the eager one does."""
    for name, t in tensors.items():
        if t.dtype not in (torch.float16, torch.bfloat16):
            raise RuntimeError(f"{name}: must be float16 or bfloat16, got {_dtype_name(t.dtype)} [{op}]")


def _check_kernel_for_dtype(op, kernel, a):
    """csrc/ops.cpp's check_kernel_for_dtype: a bfloat16 call can only name a kernel with a bf16 build."""
    if a.dtype == torch.bfloat16 and kernel not in BF16_KERNELS:
        raise NotImplementedError(
            f"kernel_name: '{kernel}' has no bfloat16 build (the paper's fp16-chain kernels baseline, smb, vml, ila, "
            f"opt4gptq and deterministic compute in fp16 by design); bfloat16 activations run on "
            f"{', '.join(BF16_KERNELS)} [{op}]")


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
    _check_half_or_bf16("opt4gptq::gptq_gemm", a=a, b_gptq_scales=b_gptq_scales)
    return a.new_empty((*a.shape[:-1], b_q_weight.shape[1]))  # a's dtype (fp16 or bf16), as the CUDA op returns


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
    _check_half_or_bf16("opt4gptq::gemm", a=a)
    _check_kernel_for_dtype("opt4gptq::gemm", kernel, a)
    _check_half_or_bf16("opt4gptq::gemm", scales=scales)
    return a.new_empty((*a.shape[:-1], scales.shape[1]))  # a's dtype (fp16 or bf16), as the CUDA op returns
