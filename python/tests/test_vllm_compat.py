"""vLLM's GPTQ linear-method call sequence (load -> g_idx argsort -> gptq_shuffle -> gptq_gemm -> + bias) on the
ops, against an fp64 reference computed from the original tensors; and what gptq_shuffle writes, byte for byte. In fp16
and in bf16: vLLM serving a bf16 model holds the activations, the bias and the scales in bf16 (its params_dtype)."""
import pytest
import torch

import opt4gptq
from helpers import DTYPE_IDS, DTYPES, REL_ERR_BOUND, VllmGptqLayer, activations, make_layer, rel_err

ops = torch.ops.opt4gptq
MAX_REL_ERR = 5e-3  # fp16 activations and outputs, fp32 accumulation: observed errors are ~3e-4


def bias_for(n, seed=7, dtype=torch.float16):
    return (torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.1).to("cuda", dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("act_order", [False, True], ids=["plain", "act_order"])
@pytest.mark.parametrize("fmt,sym", [("gptq", True), ("gptq", False), ("gptq_v2", False)], ids=["v1sym", "v1asym",
                                                                                                 "v2asym"])
@pytest.mark.parametrize("group_size", [128, 32])
def test_linear_method_sequence(act_order, fmt, sym, group_size, dtype):
    """dtype: of the activations, the bias and the checkpoint's scales (bf16 scales: converted per call by the op)."""
    k, n = 1024, 768
    t, w = make_layer(k, n, group_size, act_order=act_order, fmt=fmt, sym=sym, seed=21, scales_dtype=dtype)
    assert torch.equal(t["g_idx"], torch.arange(k, device="cuda", dtype=torch.int32) // group_size) != act_order
    layer = VllmGptqLayer(ops, t["qweight"], t["qzeros"], t["scales"], t["g_idx"], desc_act=act_order,
                          checkpoint_format=fmt)
    layer.process_weights_after_loading()
    assert layer.state == "READY"
    assert (layer.g_idx.numel() > 0) == act_order
    bias = bias_for(n, dtype=dtype)
    # vLLM adds the bias in place (output.add_(bias)): one more rounding of the output's type, so bf16 allows 5u.
    bound = MAX_REL_ERR if dtype == torch.float16 else REL_ERR_BOUND[dtype] * 5 / 4
    for shape in [(1, k), (7, k), (33, k), (3, 5, k), (130, k)]:
        x = activations(None, k, seed=sum(shape), shape=shape, dtype=dtype)
        got = layer.apply(x, bias)
        want = x.double() @ w + bias.double()
        assert got.shape == shape[:-1] + (n,) and got.dtype == dtype
        err = rel_err(got, want)
        assert torch.isfinite(got).all() and err < bound, f"shape {shape}: relative error {err:.3e}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("fmt", ["gptq", "gptq_v2"])
def test_row_parallel_act_order_shard(fmt, dtype):
    """exllama_state UNUSED: a row shard of an act-order layer (its groups are uneven), g_idx as loaded, scales and
    qzeros of all groups, no shuffle; gptq_gemm(use_exllama=False) through the cached prepared layout."""
    k, n, world = 2048, 512, 4
    t, w = make_layer(k, n, 128, act_order=True, fmt=fmt, sym=fmt == "gptq", seed=31, scales_dtype=dtype)
    x = activations(9, k, seed=2, dtype=dtype)
    total = torch.zeros(9, n, dtype=torch.float64, device="cuda")
    for rank in range(world):
        k0, k1 = rank * k // world, (rank + 1) * k // world
        counts = torch.bincount(t["g_idx"][k0:k1].long(), minlength=t["scales"].shape[0])
        assert counts.max() != counts.min(), "the shard should have uneven groups"
        layer = VllmGptqLayer(ops, t["qweight"][k0 // 8:k1 // 8].contiguous(), t["qzeros"], t["scales"],
                              t["g_idx"][k0:k1].contiguous(), desc_act=True, checkpoint_format=fmt, row_parallel=True)
        qweight_before = layer.qweight.clone()
        layer.process_weights_after_loading()
        assert layer.state == "UNUSED" and torch.equal(layer.qweight, qweight_before)
        part = layer.apply(x[:, k0:k1].contiguous())
        entries = opt4gptq.cache_size()
        again = layer.apply(x[:, k0:k1].contiguous())  # the second call finds the prepared layout
        assert opt4gptq.cache_size() == entries, "the second call prepared the layer again"
        # Two runs of the same call: they differ only where K blocks meet through atomics (their order).
        assert rel_err(again, part) < (1e-3 if dtype == torch.float16 else REL_ERR_BOUND[dtype])
        want = x[:, k0:k1].double() @ w[k0:k1]
        err = rel_err(part, want)
        assert part.dtype == dtype and err < REL_ERR_BOUND[dtype], f"rank {rank}: relative error {err:.3e}"
        total += part.double()
    err = rel_err(total, x.double() @ w)
    assert err < REL_ERR_BOUND[dtype], f"all-reduced: relative error {err:.3e}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_row_parallel_plain_shard(dtype):
    """Row shard without act-order: vLLM shards scales and qzeros by group; g_idx becomes empty; use_exllama=True."""
    k, n, world = 2048, 512, 2
    t, w = make_layer(k, n, 128, act_order=False, fmt="gptq", seed=41, scales_dtype=dtype)
    x = activations(5, k, seed=3, dtype=dtype)
    for rank in range(world):
        k0, k1 = rank * k // world, (rank + 1) * k // world
        g0, g1 = k0 // 128, k1 // 128
        layer = VllmGptqLayer(ops, t["qweight"][k0 // 8:k1 // 8].contiguous(), t["qzeros"][g0:g1].contiguous(),
                              t["scales"][g0:g1].contiguous(), t["g_idx"][k0:k1] - g0, desc_act=False,
                              checkpoint_format="gptq", row_parallel=True)
        layer.process_weights_after_loading()
        got = layer.apply(x[:, k0:k1].contiguous())
        err = rel_err(got, x[:, k0:k1].double() @ w[k0:k1])
        assert got.dtype == dtype and err < REL_ERR_BOUND[dtype], f"rank {rank}: relative error {err:.3e}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_group_size_minus_one_act_order(dtype):
    """group_size -1 with desc_act: vLLM argsorts an all-zero g_idx (one group) and shuffles."""
    k, n = 512, 256
    t, w = make_layer(k, n, -1, act_order=True, fmt="gptq", seed=51, scales_dtype=dtype)
    assert t["scales"].shape[0] == 1
    layer = VllmGptqLayer(ops, t["qweight"], t["qzeros"], t["scales"], t["g_idx"], desc_act=True,
                          checkpoint_format="gptq")
    layer.process_weights_after_loading()
    x = activations(4, k, dtype=dtype)
    got = layer.apply(x)
    assert got.dtype == dtype and rel_err(got, x.double() @ w) < REL_ERR_BOUND[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_shuffled_gather_of_a_bad_permutation_gives_nan(dtype):
    """gptq_gemm's gather (use_exllama with a permutation) turns an entry outside [0, K) into NaN of a's dtype (fp16's
    NaN bits, 0x7E00, are a finite 2^125 in bf16): a wrong permutation shows in every output, never as a plausible
    number or an out-of-bounds read."""
    k, n = 512, 256
    t, _ = make_layer(k, n, 128, act_order=True, seed=52, scales_dtype=dtype)
    layer = VllmGptqLayer(ops, t["qweight"], t["qzeros"], t["scales"], t["g_idx"], desc_act=True,
                          checkpoint_format="gptq")
    layer.process_weights_after_loading()
    layer.g_idx[3] = k  # after the shuffle's check: the gather meets it
    got = layer.apply(activations(2, k, dtype=dtype))
    assert got.dtype == dtype and torch.isnan(got).all()


def test_shuffle_bytes():
    """gptq_shuffle with an empty perm leaves every byte; with perm = argsort(g_idx), nibble j of word (w, c) is the
    value of row perm[8w + j], column c, of the input (rows sorted by group)."""
    k, n = 512, 64
    t, _ = make_layer(k, n, 128, act_order=True, seed=61)
    qw = t["qweight"].clone()
    ops.gptq_shuffle(qw, torch.empty(0, dtype=torch.int32, device="cuda"), 4)
    assert torch.equal(qw, t["qweight"])
    perm = torch.argsort(t["g_idx"]).to(torch.int)
    ops.gptq_shuffle(qw, perm, 4)
    q_in, q_out = opt4gptq.unpack(t["qweight"], 0), opt4gptq.unpack(qw, 0)
    assert torch.equal(q_out, q_in[perm.long()])
    groups = t["g_idx"][perm.long()]
    assert torch.equal(groups, torch.arange(k, device="cuda", dtype=torch.int32) // 128)  # rows sorted by group
    # Strided rows (a column slice of a wider tensor) are shuffled in place too.
    wide = torch.zeros(k // 8, 2 * n, dtype=torch.int32, device="cuda")
    view = wide[:, :n]
    view.copy_(t["qweight"])
    ops.gptq_shuffle(view, perm, 4)
    assert torch.equal(view, qw) and torch.equal(wide[:, n:], torch.zeros_like(wide[:, n:]))


def test_schemas_match_vllm():
    schema = str(torch.ops.opt4gptq.gptq_gemm.default._schema)
    assert schema == ("opt4gptq::gptq_gemm(Tensor a, Tensor b_q_weight, Tensor b_gptq_qzeros, Tensor b_gptq_scales, "
                      "Tensor b_g_idx, bool use_exllama, bool use_v2_format, int bit) -> Tensor"), schema
    schema = str(torch.ops.opt4gptq.gptq_shuffle.default._schema)
    assert schema == "opt4gptq::gptq_shuffle(Tensor(a!) q_weight, Tensor q_perm, int bit) -> ()", schema
