"""The native op by kernel name, the act-order preparation, the dispatch choice, GptqLinear; in fp16 and bf16."""
import pytest
import torch

import opt4gptq
from helpers import DTYPE_IDS, DTYPES, REL_ERR_BOUND, activations, make_layer, poison_next_output, rel_err

ops = torch.ops.opt4gptq
MAX_REL_ERR = 5e-3
NO_BF16_BUILD = [k for k in opt4gptq.KERNELS if k not in opt4gptq.BF16_KERNELS]


def refused_in_bf16(kernel):
    """pytest.raises for a bf16 call naming a kernel without a bf16 build (csrc/ops.cpp's check_kernel_for_dtype)."""
    return pytest.raises(NotImplementedError, match=f"^kernel_name: '{kernel}' has no bfloat16 build")


@pytest.fixture(scope="module")
def layers():
    out = {}
    for act in (False, True):
        for fmt, sym in (("gptq", True), ("gptq_v2", False)):
            t, w = make_layer(2048, 1536, 128, act_order=act, fmt=fmt, sym=sym, seed=71 + 2 * act + (fmt == "gptq_v2"))
            prepared = ops.prepare_act_order(t["qweight"], t["g_idx"], t["scales"].shape[0]) if act else None
            out[act, fmt] = (t, w, prepared)
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kernel", opt4gptq.KERNELS)
@pytest.mark.parametrize("act", [False, True], ids=["plain", "act_order"])
@pytest.mark.parametrize("fmt", ["gptq", "gptq_v2"])
def test_every_kernel(layers, kernel, act, fmt, dtype):
    """Every kernel name on fp16 and bf16 activations (bf16: the kernel's bf16 build; the kernels without one refuse
    by name), against fp64. The output (its dtype is a's) is allocated on a block poisoned with NaN."""
    t, w, prepared = layers[act, fmt]
    qweight = None if act else t["qweight"]
    if dtype == torch.bfloat16 and kernel in NO_BF16_BUILD:
        with refused_in_bf16(kernel):
            opt4gptq.gemm(activations(3, 2048, dtype=dtype), qweight, t["qzeros"], t["scales"], prepared, 128,
                          fmt == "gptq_v2", kernel)
        return
    for m in (1, 3, 8, 17, 64):
        x = activations(m, 2048, seed=m, dtype=dtype)
        poison_next_output(m, 1536, dtype)
        got = opt4gptq.gemm(x, qweight, t["qzeros"], t["scales"], prepared, 128, fmt == "gptq_v2", kernel)
        assert got.dtype == dtype and got.shape == (m, 1536)
        err = rel_err(got, x.double() @ w)
        assert torch.isfinite(got).all() and err < REL_ERR_BOUND[dtype], f"M={m}: relative error {err:.3e}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kernel", ["deterministic", "tensorcore_deterministic", "deterministic_f32", "decode",
                                    "tensorcore_pipelined_deterministic"])
def test_deterministic_is_bitwise_reproducible(layers, kernel, dtype):
    if dtype == torch.bfloat16 and kernel in NO_BF16_BUILD:
        pytest.skip(f"{kernel} has no bf16 build (test_paper_kernels_refuse_bf16)")
    t, _, _ = layers[False, "gptq"]
    x = activations(24, 2048, dtype=dtype)
    first = opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel)
    for _ in range(20):
        assert torch.equal(opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel), first)


@pytest.mark.parametrize("kernel", NO_BF16_BUILD)
def test_paper_kernels_refuse_bf16(layers, kernel):
    """The fp16-chain kernels have no bf16 build: a bf16 call naming one raises NotImplementedError naming kernel_name,
    the dtype and every kernel that takes bf16; the same call in fp16 runs."""
    t, _, _ = layers[False, "gptq"]
    x = activations(4, 2048, dtype=torch.bfloat16)
    with refused_in_bf16(kernel) as info:
        opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel)
    message = str(info.value).splitlines()[0]
    assert "bfloat16" in message and message.rstrip().endswith("[opt4gptq::gemm]"), message
    for name in opt4gptq.BF16_KERNELS:
        assert name in message, (name, message)
    assert opt4gptq.gemm(x.half(), t["qweight"], t["qzeros"], t["scales"], kernel=kernel).dtype == torch.float16


@pytest.mark.parametrize("scales_dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_group_size_minus_one_and_single_row_strides(dtype, scales_dtype):
    """A group-size -1 layer whose scales/qzeros are [1, N] with strides (1, 1), as GPTQModel holds them."""
    t, w = make_layer(512, 256, -1, seed=81, scales_dtype=scales_dtype)
    scales = torch.empty_strided((1, 256), (1, 1), dtype=scales_dtype, device="cuda")
    qzeros = torch.empty_strided((1, 32), (1, 1), dtype=torch.int32, device="cuda")
    scales.copy_(t["scales"])
    qzeros.copy_(t["qzeros"])
    x = activations(5, 512, dtype=dtype)
    for kernel in ("baseline", "tensorcore") if dtype == torch.float16 else ("deterministic_f32", "tensorcore"):
        got = opt4gptq.gemm(x, t["qweight"], qzeros, scales, group_size=-1, kernel=kernel)
        assert got.dtype == dtype and rel_err(got, x.double() @ w) < REL_ERR_BOUND[dtype]


@pytest.mark.parametrize("scales_dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_row_strided_scales_and_unaligned_activations(dtype, scales_dtype):
    t, w = make_layer(1024, 512, 128, seed=82, scales_dtype=scales_dtype)
    scales = torch.zeros(8, 1024, dtype=scales_dtype, device="cuda")[:, :512]
    scales.copy_(t["scales"])
    qzeros = torch.zeros(8, 128, dtype=torch.int32, device="cuda")[:, :64]
    qzeros.copy_(t["qzeros"])
    x_wide = activations(6, 1024 + 1, dtype=dtype)
    x = x_wide[:, 1:]  # not contiguous, odd offset: the op copies it
    got = opt4gptq.gemm(x, t["qweight"], qzeros, scales, kernel="tensorcore")
    assert got.dtype == dtype and rel_err(got, x.double() @ w) < REL_ERR_BOUND[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("act", [False, True], ids=["plain", "act_order"])
def test_bf16_scales_equal_fp16_scales(dtype, act):
    """Scales exactly representable in both types (bf16 values in fp16's normal range): bf16 scales (converted to fp16
    per call) and the same values as fp16 scales give the same output, bit for bit with the deterministic kernels; both
    ops, fp16 and bf16 activations."""
    t, w = make_layer(2048, 512, 128, act_order=act, seed=83, scales_dtype=torch.bfloat16)
    s_bf16 = t["scales"]
    s_fp16 = s_bf16.to(torch.float16)
    assert torch.equal(s_fp16.to(torch.bfloat16), s_bf16), "the test's scales must be exact in both types"
    prepared = ops.prepare_act_order(t["qweight"], t["g_idx"], s_bf16.shape[0]) if act else None
    qweight = None if act else t["qweight"]
    for m in (1, 8, 64):
        x = activations(m, 2048, seed=m, dtype=dtype)
        for kernel in ("deterministic_f32", "decode", "tensorcore_deterministic", "tensorcore_pipelined_deterministic"):
            got = opt4gptq.gemm(x, qweight, t["qzeros"], s_bf16, prepared, 128, False, kernel)
            want = opt4gptq.gemm(x, qweight, t["qzeros"], s_fp16, prepared, 128, False, kernel)
            assert torch.equal(got, want), (m, kernel)
        got = opt4gptq.gemm(x, qweight, t["qzeros"], s_bf16, prepared, 128, False, "auto")
        assert got.dtype == dtype and rel_err(got, x.double() @ w) < REL_ERR_BOUND[dtype]
    if not act:  # vLLM's op: no act-order (empty g_idx), bf16 scales
        x = activations(5, 2048, dtype=dtype)
        empty = torch.empty(0, dtype=torch.int32, device="cuda")
        got = ops.gptq_gemm(x, t["qweight"], t["qzeros"], s_bf16, empty, True, False, 4)
        want = ops.gptq_gemm(x, t["qweight"], t["qzeros"], s_fp16, empty, True, False, 4)
        assert got.dtype == dtype and rel_err(got, want) < REL_ERR_BOUND[dtype]


def test_bf16_scales_beyond_fp16():
    """A bf16 scale beyond fp16's range: the ops convert it per call without a check (a check would synchronize every
    call) and its group's outputs become non-finite (visible); scales_to_fp16 and GptqLinear, at load time, refuse it
    by name."""
    t, _ = make_layer(256, 128, 128, seed=84, scales_dtype=torch.bfloat16)
    scales = t["scales"].clone()
    scales[1, 5] = 1e6  # group 1 (rows 128..255), column 5
    x = activations(3, 256, dtype=torch.bfloat16)
    for kernel in ("auto", "deterministic_f32", "tensorcore"):
        got = opt4gptq.gemm(x, t["qweight"], t["qzeros"], scales, kernel=kernel)
        assert not torch.isfinite(got[:, 5]).any(), kernel
        assert torch.isfinite(got[:, :5]).all() and torch.isfinite(got[:, 6:]).all(), kernel
    with pytest.raises(ValueError, match="^scales: 1 bfloat16 scale"):
        opt4gptq.scales_to_fp16(scales)
    with pytest.raises(ValueError, match="^scales: "):
        opt4gptq.GptqLinear(t["qweight"], t["qzeros"], scales, t["g_idx"], 128)


def test_choose_kernel_names_a_kernel():
    for m in (1, 2, 4, 8, 32, 128, 1000):
        name = opt4gptq.choose_kernel(m, 4096, 4096, 32, False)
        assert name in opt4gptq.KERNELS and name != "auto", name
    if torch.cuda.get_device_capability() == (9, 0):  # the H200 table (dispatch/sm90_h200.hpp), default options
        assert opt4gptq.choose_kernel(1, 4096, 4096, 32, False) == "decode"  # overflow-safe: never baseline
        assert opt4gptq.choose_kernel(64, 4096, 4096, 32, False) == "tensorcore_pipelined"
        assert opt4gptq.choose_kernel(1000, 4096, 4096, 32, False) == "dequant_matmul"


def test_choose_kernel_bf16():
    """auto for bf16 activations: the dispatcher with options.dtype = bf16 among the kernels with a bf16 build. The
    default options already exclude the kernels with fp16 partial sums, which are exactly those without a bf16 build,
    so on every table the choice is the fp16 one."""
    for act in (False, True):
        for m in (1, 2, 3, 4, 8, 16, 32, 64, 128, 256, 1000, 5000):
            for k, n, groups in ((4096, 4096, 32), (4096, 11008, 32), (11008, 4096, 86), (1024, 512, 8)):
                name = opt4gptq.choose_kernel(m, k, n, groups, act, dtype=torch.bfloat16)
                assert name in opt4gptq.BF16_KERNELS and name != "auto", name
                assert name == opt4gptq.choose_kernel(m, k, n, groups, act), (m, k, n, act)
    assert opt4gptq.choose_kernel(1, 4096, 4096, 32, False, "bfloat16") == opt4gptq.choose_kernel(
        1, 4096, 4096, 32, False, dtype=torch.bfloat16)
    assert ops.choose_kernel(8, 4096, 4096, 32, False) == opt4gptq.choose_kernel(8, 4096, 4096, 32)  # old schema call
    with pytest.raises(RuntimeError, match="^dtype: must be 'float16' or 'bfloat16'"):
        opt4gptq.choose_kernel(1, 4096, 4096, 32, False, dtype=torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_auto_is_overflow_safe(dtype):
    """Activations of +-2000 on a K = 4096 layer: the fp16 partial sums of four products overflow (Baseline's chain
    gives inf), the exact result fits in fp16. "auto" (the dispatcher's default options) must return it, finite and
    accurate, at every M it may see (bf16: fp32 range throughout, the same must hold)."""
    t, w = make_layer(4096, 512, 128, seed=91)
    for m in (1, 2, 8, 64, 300):
        signs = torch.randint(0, 2, (m, 4096), generator=torch.Generator().manual_seed(m)) * 2 - 1
        x = signs.to("cuda", dtype) * 2000
        want = x.double() @ w
        assert want.abs().max() < 60000, "the test's exact result must fit in fp16"
        got = opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel="auto")
        chosen = opt4gptq.choose_kernel(m, 4096, 512, 32, False, dtype=dtype)
        assert torch.isfinite(got).all(), f"M={m}: auto ({chosen}) overflowed"
        assert rel_err(got, want) < REL_ERR_BOUND[dtype], f"M={m}"


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


@pytest.mark.parametrize("bias_dtype", [torch.bfloat16, torch.float16, None], ids=["bias_bf16", "bias_fp16", "no_bias"])
def test_gptq_linear_module_bf16(bias_dtype):
    """bf16 inputs, a bf16 checkpoint's scales (converted to fp16 once, at construction) and a bias of either dtype
    (added in the output's dtype): the output is bf16; a kernel without a bf16 build is refused by name."""
    k, n = 1024, 384
    gen = torch.Generator().manual_seed(6)
    bias = None if bias_dtype is None else (torch.randn(n, generator=gen) * 0.1).to("cuda", bias_dtype)
    for act in (False, True):
        t, w = make_layer(k, n, 128, act_order=act, seed=7 + act, scales_dtype=torch.bfloat16)
        layer = opt4gptq.GptqLinear(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], 128, bias=bias)
        assert layer.scales.dtype == torch.float16 and torch.equal(layer.scales.to(torch.bfloat16), t["scales"])
        x = activations(3, k, shape=(3, 2, k), dtype=torch.bfloat16)
        want = x.double() @ w + (0 if bias is None else bias.double())
        for kernel in ("auto", "decode", "tensorcore", "tensorcore_pipelined_deterministic", "dequant_matmul"):
            layer.kernel = kernel
            got = layer(x)
            assert got.dtype == torch.bfloat16 and got.shape == (3, 2, n)
            # The bias adds one more bf16 rounding (when it was fp16, two): 5u instead of 4u.
            assert rel_err(got, want) < REL_ERR_BOUND[torch.bfloat16] * 5 / 4, kernel
        layer.kernel = "baseline"
        with refused_in_bf16("baseline"):
            layer(x)
        assert layer(x.half()).dtype == torch.float16  # the same module serves fp16 inputs


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
