"""GPTQ v1 zero points of 0: v1 stores the v2 word minus 0x11111111 as one 32-bit subtraction, so a zero point of 0
borrows from the next nibble (docs/gptq_format.md). Layers with zero points of 0 and 15 placed by hand in the lowest,
middle and highest nibbles, through both ops, v1 and v2, against the fp64 reference of the v2 tensors."""
import pytest
import torch

import opt4gptq
from helpers import VllmGptqLayer, activations, rel_err

ops = torch.ops.opt4gptq
K, N, GS = 1024, 512, 128


def layer_with_borrows(act_order):
    gen = torch.Generator().manual_seed(91)
    weight = torch.randn(N, K, generator=gen) * 0.02
    t = opt4gptq.quantize(weight.cuda(), group_size=GS, sym=False, checkpoint_format="gptq_v2", act_order=act_order,
                          generator=gen)
    z = opt4gptq.unpack(t["qzeros"], 1)  # [G, N] true zero points
    z[0, 0] = 0                                 # lowest nibble of a word
    z[1, 8 * 5 + 4] = 0                         # a middle nibble
    z[2, N - 1] = 0                             # the highest nibble: the subtraction wraps the word
    z[3, 8 * 10:8 * 11] = 0                     # a word of zero points 0: 0xEEEEEEEF in v1
    z[4, 8 * 20:8 * 20 + 4] = torch.tensor([0, 1, 1, 0])  # borrow chains
    z[5, 8 * 30:8 * 31] = 15                    # no zero point 0: no borrow
    v2 = dict(t, qzeros=opt4gptq.pack(z.to(torch.int32), dim=1))
    v1 = dict(v2, qzeros=opt4gptq.v2_to_v1_qzeros(v2["qzeros"]))
    # The nibble-wise reading (stored + 1 per nibble) must differ here, or the borrow would not be exercised.
    assert (opt4gptq.unpack(v1["qzeros"], 1) + 1 != z).any()
    w = opt4gptq.dequantize(v2["qweight"], v2["qzeros"], v2["scales"], v2["g_idx"], "gptq_v2")
    assert torch.equal(w, opt4gptq.dequantize(v1["qweight"], v1["qzeros"], v1["scales"], v1["g_idx"], "gptq"))
    return {"gptq": v1, "gptq_v2": v2}, w


@pytest.mark.parametrize("act_order", [False, True], ids=["plain", "act_order"])
def test_zero_points_of_zero(act_order):
    tensors, w = layer_with_borrows(act_order)
    outs = {}
    for fmt, t in tensors.items():
        x = activations(5, K)
        want = x.double() @ w
        layer = VllmGptqLayer(ops, t["qweight"], t["qzeros"], t["scales"], t["g_idx"], desc_act=act_order,
                              checkpoint_format=fmt)
        layer.process_weights_after_loading()
        assert rel_err(layer.apply(x), want) < 5e-3, fmt
        for kernel in ("baseline", "tensorcore", "deterministic"):
            prepared = ops.prepare_act_order(t["qweight"], t["g_idx"], K // GS) if act_order else None
            out = opt4gptq.gemm(x, None if act_order else t["qweight"], t["qzeros"], t["scales"], prepared, GS,
                                fmt == "gptq_v2", kernel)
            assert rel_err(out, want) < 5e-3, (fmt, kernel)
            outs[fmt, kernel] = out
    # The same zero points in both formats: the deterministic kernel gives the very same bits.
    assert torch.equal(outs["gptq", "deterministic"], outs["gptq_v2", "deterministic"])
