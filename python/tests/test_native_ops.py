"""The native op by kernel name, the act-order preparation, the dispatch choice, GptqLinear."""
import pytest
import torch

import opt4gptq
from helpers import activations, make_layer, rel_err

ops = torch.ops.opt4gptq
MAX_REL_ERR = 5e-3


@pytest.fixture(scope="module")
def layers():
    out = {}
    for act in (False, True):
        for fmt, sym in (("gptq", True), ("gptq_v2", False)):
            t, w = make_layer(2048, 1536, 128, act_order=act, fmt=fmt, sym=sym, seed=71 + 2 * act + (fmt == "gptq_v2"))
            prepared = ops.prepare_act_order(t["qweight"], t["g_idx"], t["scales"].shape[0]) if act else None
            out[act, fmt] = (t, w, prepared)
    return out


@pytest.mark.parametrize("kernel", opt4gptq.KERNELS)
@pytest.mark.parametrize("act", [False, True], ids=["plain", "act_order"])
@pytest.mark.parametrize("fmt", ["gptq", "gptq_v2"])
def test_every_kernel(layers, kernel, act, fmt):
    t, w, prepared = layers[act, fmt]
    for m in (1, 3, 8, 17, 64):
        x = activations(m, 2048, seed=m)
        got = opt4gptq.gemm(x, None if act else t["qweight"], t["qzeros"], t["scales"], prepared, 128,
                            fmt == "gptq_v2", kernel)
        err = rel_err(got, x.double() @ w)
        assert torch.isfinite(got).all() and err < MAX_REL_ERR, f"M={m}: relative error {err:.3e}"


@pytest.mark.parametrize("kernel", ["deterministic", "tensorcore_deterministic", "deterministic_f32", "decode",
                                    "tensorcore_pipelined_deterministic"])
def test_deterministic_is_bitwise_reproducible(layers, kernel):
    t, _, _ = layers[False, "gptq"]
    x = activations(24, 2048)
    first = opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel)
    for _ in range(20):
        assert torch.equal(opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel), first)


def test_group_size_minus_one_and_single_row_strides():
    """A group-size -1 layer whose scales/qzeros are [1, N] with strides (1, 1), as GPTQModel holds them."""
    t, w = make_layer(512, 256, -1, seed=81)
    scales = torch.empty_strided((1, 256), (1, 1), dtype=torch.float16, device="cuda")
    qzeros = torch.empty_strided((1, 32), (1, 1), dtype=torch.int32, device="cuda")
    scales.copy_(t["scales"])
    qzeros.copy_(t["qzeros"])
    x = activations(5, 512)
    for kernel in ("baseline", "tensorcore"):
        got = opt4gptq.gemm(x, t["qweight"], qzeros, scales, group_size=-1, kernel=kernel)
        assert rel_err(got, x.double() @ w) < MAX_REL_ERR


def test_row_strided_scales_and_unaligned_activations():
    t, w = make_layer(1024, 512, 128, seed=82)
    scales = torch.zeros(8, 1024, dtype=torch.float16, device="cuda")[:, :512]
    scales.copy_(t["scales"])
    qzeros = torch.zeros(8, 128, dtype=torch.int32, device="cuda")[:, :64]
    qzeros.copy_(t["qzeros"])
    x_wide = activations(6, 1024 + 1)
    x = x_wide[:, 1:]  # not contiguous, odd offset: the op copies it
    got = opt4gptq.gemm(x, t["qweight"], qzeros, scales, kernel="tensorcore")
    assert rel_err(got, x.double() @ w) < MAX_REL_ERR


def test_choose_kernel_names_a_kernel():
    for m in (1, 2, 4, 8, 32, 128, 1000):
        name = opt4gptq.choose_kernel(m, 4096, 4096, 32, False)
        assert name in opt4gptq.KERNELS and name != "auto", name
    if torch.cuda.get_device_capability() == (9, 0):  # the H200 table (dispatch/sm90_h200.hpp), default options
        assert opt4gptq.choose_kernel(1, 4096, 4096, 32, False) == "decode"  # overflow-safe: never baseline
        assert opt4gptq.choose_kernel(64, 4096, 4096, 32, False) == "tensorcore_pipelined"
        assert opt4gptq.choose_kernel(1000, 4096, 4096, 32, False) == "dequant_matmul"


def test_auto_is_overflow_safe():
    """Activations of +-2000 on a K = 4096 layer: the fp16 partial sums of four products overflow (Baseline's chain
    gives inf), the exact result fits in fp16. "auto" (the dispatcher's default options) must return it, finite and
    accurate, at every M it may see."""
    t, w = make_layer(4096, 512, 128, seed=91)
    for m in (1, 2, 8, 64, 300):
        x = (torch.randint(0, 2, (m, 4096), generator=torch.Generator().manual_seed(m)) * 2 - 1).half().cuda() * 2000
        want = x.double() @ w
        assert want.abs().max() < 60000, "the test's exact result must fit in fp16"
        got = opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel="auto")
        assert torch.isfinite(got).all(), f"M={m}: auto ({opt4gptq.choose_kernel(m, 4096, 512, 32, False)}) overflowed"
        assert rel_err(got, want) < MAX_REL_ERR, f"M={m}"


def test_gptq_linear_module():
    gen = torch.Generator().manual_seed(5)
    weight = (torch.randn(384, 1024, generator=gen) * 0.02).cuda()
    bias = (torch.randn(384, generator=gen) * 0.1).cuda().half()
    for act in (False, True):
        layer, t = opt4gptq.GptqLinear.from_weight(weight, bias=bias, act_order=act, generator=gen)
        assert layer.act_order == act and (layer.prepared is not None) == act
        w = opt4gptq.dequantize(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], "gptq")
        x = activations(3, 1024, shape=(3, 2, 1024))
        want = x.double() @ w + bias.double()
        for kernel in ("auto", "baseline", "opt4gptq"):
            layer.kernel = kernel
            assert rel_err(layer(x), want) < MAX_REL_ERR


def test_quantizer_round_trip():
    """The packer against hand-made words, and v1 zero words with the borrow (docs/gptq_format.md's example)."""
    vals = torch.arange(8, dtype=torch.int32).repeat(3, 1).t().contiguous()  # row j holds j
    packed = opt4gptq.pack(vals, dim=0)
    assert packed.shape == (1, 3) and int(packed[0, 0]) == 0x76543210
    assert torch.equal(opt4gptq.unpack(packed, 0), vals.long())
    v2 = torch.tensor([[0x7880F508]], dtype=torch.int32)
    v1 = opt4gptq.v2_to_v1_qzeros(v2)
    assert int(v1[0, 0]) & 0xFFFFFFFF == 0x676FE3F7
    assert torch.equal(opt4gptq.v1_to_v2_qzeros(v1), v2)
