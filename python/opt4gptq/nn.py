"""GptqLinear: a GPTQ 4-bit linear layer on the native op, as an engine holds one (load-time preparation, per-call
launch, any kernel by name)."""
import torch

from .quant import quantize, scales_to_fp16


class GptqLinear(torch.nn.Module):
    """y = x · dequant(W) (+ bias) with opt4gptq's kernels.

    Act-order layers (a g_idx that is not k // group_size) are prepared once here, at construction (the library's
    prepare_act_order: rows sorted by group, one synchronization); the checkpoint's qweight is then not kept.
    `kernel` is one of opt4gptq.KERNELS and may be changed between calls (the model table does).

    x may be float16 or bfloat16 (y has x's dtype; a bfloat16 x needs a kernel of opt4gptq.BF16_KERNELS). bfloat16
    scales (a bf16 checkpoint's) are converted to float16 here, once (scales_to_fp16: ValueError when one is beyond
    float16's range), so no call pays the ops' per-call conversion. The bias is added in y's dtype (a bias of another
    dtype is converted per call; pass it in the dtype of the inputs to avoid that)."""

    def __init__(self, qweight, qzeros, scales, g_idx, group_size, checkpoint_format="gptq", bias=None,
                 kernel="auto"):
        super().__init__()
        if checkpoint_format not in ("gptq", "gptq_v2"):
            raise ValueError("checkpoint_format must be 'gptq' (v1 zero points) or 'gptq_v2'")
        self.in_features = qweight.shape[0] * 8
        self.out_features = qweight.shape[1]
        self.group_size = group_size
        self.use_v2_format = checkpoint_format == "gptq_v2"
        self.kernel = kernel
        self.register_buffer("qzeros", qzeros)
        self.register_buffer("scales", scales_to_fp16(scales, "scales"))
        self.register_buffer("bias", bias)
        k = self.in_features
        sequential = torch.arange(k, device=g_idx.device, dtype=torch.int32) // (group_size if group_size > 0 else k)
        self.act_order = not torch.equal(g_idx.to(torch.int32), sequential)
        if self.act_order:
            self.register_buffer("prepared", torch.ops.opt4gptq.prepare_act_order(qweight, g_idx, scales.shape[0]))
            self.qweight = None
        else:
            self.register_buffer("qweight", qweight)
            self.prepared = None

    @classmethod
    def from_weight(cls, weight, bias=None, group_size=128, act_order=False, checkpoint_format="gptq", sym=True,
                    generator=None, kernel="auto"):
        """Quantizes a float weight [out, in] (round to nearest) and builds the layer. Returns (layer, tensors)."""
        t = quantize(weight, group_size=group_size, sym=sym, checkpoint_format=checkpoint_format,
                     act_order=act_order, generator=generator)
        return cls(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], group_size, checkpoint_format, bias,
                   kernel), t

    def forward(self, x):
        y = torch.ops.opt4gptq.gemm(x, self.qweight, self.qzeros, self.scales, self.prepared, self.group_size,
                                    self.use_v2_format, self.kernel)
        if self.bias is None:
            return y
        return y + (self.bias if self.bias.dtype == y.dtype else self.bias.to(y.dtype))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}, "
                f"act_order={self.act_order}, v2={self.use_v2_format}, kernel={self.kernel!r}")
