"""Shared by the tests and by bad_input_cases.py: layers made by the package's quantizer, an fp64 reference, and
vLLM's GPTQ linear-method call sequence reproduced step by step."""
import torch

import opt4gptq


def rel_err(got, want):
    """||got - want|| / ||want||, in fp64."""
    got, want = got.double(), want.double()
    return ((got - want).norm() / want.norm()).item()


def make_layer(k, n, group_size=128, act_order=False, fmt="gptq", sym=True, seed=0, device="cuda"):
    """A random layer as a GPTQ checkpoint stores it, and its fp64 dequantized weight [K, N] (the reference)."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(n, k, generator=gen) * 0.02  # nn.Linear layout [out, in]
    t = opt4gptq.quantize(weight.to(device), group_size=group_size, sym=sym, checkpoint_format=fmt,
                          act_order=act_order, generator=gen)
    w_ref = opt4gptq.dequantize(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], fmt)
    return t, w_ref


def activations(m, k, seed=1, device="cuda", shape=None):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*(shape or (m, k)), generator=gen)
    return x.to(device, torch.float16)


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
