"""Shared by the tests and by bad_input_cases.py: layers made by the package's quantizer, an fp64 reference, and
vLLM's GPTQ linear-method call sequence reproduced step by step."""
import torch

import opt4gptq

DTYPES = (torch.float16, torch.bfloat16)
DTYPE_IDS = ("fp16", "bf16")

#: Norm-wise relative error bounds (rel_err) of a GEMM output against the fp64 product of the same (rounded) inputs.
#: fp16: 5e-3, as the suite has always used (observed ~3e-4; fp16's unit roundoff is 2^-11 = 4.9e-4).
#: bf16: 4u with bf16's unit roundoff u = 2^-8 (8 significant bits) = 3.9e-3, i.e. 1.56e-2. Why 4u: the output is
#: rounded once to bf16 (at most u per element, so at most u norm-wise); the matrix-core builds also round each
#: dequantized weight to bf16 (errors of random sign across K: about u/sqrt(3) norm-wise), and so does dequant_matmul;
#: the kernels whose K blocks meet in C through bf16 atomics (tensorcore, tensorcore_pipelined) round every addition
#: of a K block's partial sum to bf16 (C is zero-filled; addition j rounds a running sum of about sqrt(j/s)·|y|, so s
#: blocks give about sqrt((s + 1) / 6)·u: 1.7u at s = 16, K = 2048 in blocks of 128 rows, 2.4u at s = 32). Products and
#: sums are fp32 elsewhere (their error, ~K·2^-24, is negligible). 4u leaves room for the atomics' random walk without
#: admitting a real bug (a wrong group, scale or zero point gives errors of order 1).
REL_ERR_BOUND = {torch.float16: 5e-3, torch.bfloat16: 4 * 2 ** -8}


def rel_err(got, want):
    """||got - want|| / ||want||, in fp64."""
    got, want = got.double(), want.double()
    return ((got - want).norm() / want.norm()).item()


def make_layer(k, n, group_size=128, act_order=False, fmt="gptq", sym=True, seed=0, device="cuda",
               scales_dtype=torch.float16):
    """A random layer as a GPTQ checkpoint stores it, and its fp64 dequantized weight [K, N] (the reference).
    scales_dtype=torch.bfloat16: the scales as a bf16 checkpoint stores them (GPTQModel on a bf16 model): rounded to
    bf16, and the reference made from the rounded values."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(n, k, generator=gen) * 0.02  # nn.Linear layout [out, in]
    t = opt4gptq.quantize(weight.to(device), group_size=group_size, sym=sym, checkpoint_format=fmt,
                          act_order=act_order, generator=gen)
    t["scales"] = t["scales"].to(scales_dtype)
    w_ref = opt4gptq.dequantize(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], fmt)
    return t, w_ref


def activations(m, k, seed=1, device="cuda", shape=None, dtype=torch.float16):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*(shape or (m, k)), generator=gen)
    return x.to(device, dtype)


def poison_next_output(rows, cols, dtype):
    """Best effort: leaves a freed block of NaN of an [rows, cols] output's size in the caching allocator, which hands
    it to the next allocation of that size on the current stream (an op's output), so that an element a kernel leaves
    unwritten shows up as non-finite (the bf16 atomic kernels zero-fill C first; the others write every element)."""
    torch.full((rows, cols), float("nan"), dtype=dtype, device="cuda")


class VllmGptqLayer:
    """vLLM's GPTQLinearMethod (vllm/model_executor/layers/quantization/gptq.py), reduced to the calls it makes on its
    ops, with the ops passed in (torch.ops.opt4gptq here):
      create_weights + load: qweight, qzeros, scales, g_idx as the checkpoint (or its row shard) holds them;
      process_weights_after_loading: exllama_state UNINITIALIZED -> g_idx = argsort(g_idx).int() for desc_act, else
        an empty int tensor; gptq_shuffle(qweight, g_idx, bits); READY. UNUSED (row-parallel act-order shards) ->
        nothing: qweight and g_idx stay as loaded;
      apply: gptq_gemm(x.reshape(-1, K), qweight, qzeros, scales, g_idx, state == READY, use_v2_format, bits), then
        output.add_(bias), reshaped to x.shape[:-1] + (N,)."""

    def __init__(self, ops, qweight, qzeros, scales, g_idx, desc_act, checkpoint_format, row_parallel=False,
                 bits=4):
        self.ops, self.bits = ops, bits
        self.qweight, self.qzeros, self.scales, self.g_idx = qweight.clone(), qzeros, scales, g_idx.clone()
        self.use_v2_format = checkpoint_format == "gptq_v2"
        self.state = "UNUSED" if (row_parallel and desc_act) else "UNINITIALIZED"
        self.desc_act = desc_act

    def process_weights_after_loading(self):
        if self.state == "UNINITIALIZED":
            if self.desc_act:
                self.g_idx = torch.argsort(self.g_idx).to(torch.int)
            else:
                self.g_idx = torch.empty((0,), dtype=torch.int, device=self.g_idx.device)
            self.state = "READY"
            self.ops.gptq_shuffle(self.qweight, self.g_idx, self.bits)

    def apply(self, x, bias=None):
        out_shape = x.shape[:-1] + (self.qweight.shape[-1],)
        output = self.ops.gptq_gemm(x.reshape(-1, x.shape[-1]), self.qweight, self.qzeros, self.scales, self.g_idx,
                                    self.state == "READY", self.use_v2_format, self.bits)
        if bias is not None:
            output.add_(bias)
        return output.reshape(out_shape)
