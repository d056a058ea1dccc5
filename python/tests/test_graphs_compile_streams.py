"""The ops inside CUDA graphs, under torch.compile(fullgraph=True), in fake-tensor mode (opcheck), and on two streams at
once."""
import threading

import pytest
import torch

import opt4gptq
from helpers import VllmGptqLayer, activations, make_layer, rel_err

ops = torch.ops.opt4gptq


class Block(torch.nn.Module):
    """A small decoder-style block: RMSNorm, fused gate_up (native op, act-order), SiLU gate, down (vLLM's op,
    shuffled act-order), residual; plus a row-parallel act-order shard through gptq_gemm(use_exllama=False)."""

    def __init__(self, hidden=512, inter=1024, kernel="auto"):
        super().__init__()
        gen = torch.Generator().manual_seed(9)
        self.gate_up, self.gate_up_t = opt4gptq.GptqLinear.from_weight(
            (torch.randn(2 * inter, hidden, generator=gen) * 0.02).cuda(), act_order=True, generator=gen, kernel=kernel)
        t, self.w_down = make_layer(inter, hidden, 128, act_order=True, fmt="gptq_v2", sym=False, seed=10)
        self.down = VllmGptqLayer(ops, t["qweight"], t["qzeros"], t["scales"], t["g_idx"], desc_act=True,
                                  checkpoint_format="gptq_v2")
        self.down.process_weights_after_loading()
        # A row shard (second half of K) of the down projection, as vLLM runs it on rank 1 of 2.
        self.shard = VllmGptqLayer(ops, t["qweight"][inter // 16:].contiguous(), t["qzeros"], t["scales"],
                                   t["g_idx"][inter // 2:].contiguous(), desc_act=True, checkpoint_format="gptq_v2",
                                   row_parallel=True)
        self.inter = inter

    def forward(self, x):
        h = x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(x.dtype)
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        act = torch.nn.functional.silu(gate) * up
        shard = self.shard.apply(act[..., self.inter // 2:].contiguous())
        return x + self.down.apply(act), shard


@pytest.fixture(scope="module")
def block():
    return Block()


def test_cuda_graph_capture_and_replay(block):
    x = activations(4, 512)
    static_x = x.clone()
    with torch.no_grad():
        eager = block(x)  # also the warm-up: the row shard's prepared layout is built here, outside capture
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            block(static_x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = block(static_x)
    graph.replay()
    torch.cuda.synchronize()
    for got, want in zip(static_out, eager):
        assert rel_err(got, want) < 1e-3
    # New inputs through the same graph.
    x2 = activations(4, 512, seed=99)
    static_x.copy_(x2)
    graph.replay()
    torch.cuda.synchronize()
    with torch.no_grad():
        want2 = block(x2)
    for got, want in zip(static_out, want2):
        assert rel_err(got, want) < 1e-3


WORKSPACE_KERNELS = ["deterministic", "tensorcore_deterministic", "deterministic_f32", "decode",
                     "tensorcore_pipelined_deterministic"]


@pytest.mark.parametrize("kernel", WORKSPACE_KERNELS)
def test_cuda_graph_with_workspace_kernel(kernel):
    """The kernels with a workspace use their stream's (and, under capture, the capture's own, zero-filled once per
    replay): capturable, and the replays equal the eager call bit for bit."""
    t, w = make_layer(8192, 1024, 128, seed=12)
    x = activations(8, 8192)
    eager = opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel)
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel)
    torch.cuda.current_stream().wait_stream(stream)
    with torch.cuda.graph(graph):
        out = opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel)
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, eager)
    assert rel_err(out, x.double() @ w) < 5e-3


def test_first_use_during_capture_is_a_clear_error():
    """A row-parallel act-order layer whose first gptq_gemm call is captured: an error naming b_g_idx, no crash."""
    t, _ = make_layer(1024, 256, 128, act_order=True, seed=13)
    layer = VllmGptqLayer(ops, t["qweight"][64:].contiguous(), t["qzeros"], t["scales"], t["g_idx"][512:].contiguous(),
                          desc_act=True, checkpoint_format="gptq", row_parallel=True)
    x = activations(2, 512)
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="^b_g_idx: the first call"):
        with torch.cuda.graph(graph):
            layer.apply(x)
    torch.cuda.synchronize()
    layer.apply(x)  # outside capture it works
    torch.cuda.synchronize()


def test_torch_compile_fullgraph(block):
    x = activations(6, 512, seed=5)
    with torch.no_grad():
        eager = block(x)
        compiled = torch.compile(block, fullgraph=True)
        got = compiled(x)
        got_again = compiled(activations(11, 512, seed=6))  # another M: recompiles or runs dynamic
    # Inductor fuses the block's elementwise ops around the GEMMs (in fp32, rounding once) where eager rounds each to
    # fp16: the two differ by fp16 roundings (1.3e-3 measured on an H200), not by the GEMM.
    for g, e in zip(got, eager):
        assert rel_err(g, e) < 5e-3
    assert got_again[0].shape == (11, 512)


def test_fake_tensor_and_schema_checks():
    t, _ = make_layer(512, 256, 128, act_order=True, seed=14)
    x = activations(3, 512)
    perm = torch.argsort(t["g_idx"]).int()
    qw = t["qweight"].clone()
    ops.gptq_shuffle(qw, perm, 4)
    prepared = ops.prepare_act_order(t["qweight"], t["g_idx"], 4)
    utils = ("test_schema", "test_faketensor")
    torch.library.opcheck(ops.gptq_gemm.default, (x, qw, t["qzeros"], t["scales"], perm, True, False, 4),
                          test_utils=utils)
    torch.library.opcheck(ops.gemm.default, (x, None, t["qzeros"], t["scales"], prepared, 128, False, "baseline"),
                          test_utils=utils)
    torch.library.opcheck(ops.gptq_shuffle.default, (t["qweight"].clone(), perm, 4), test_utils=utils)


def test_meta_g_idx_is_refused():
    t, _ = make_layer(256, 128, 128, seed=15)
    x = activations(2, 256)
    # The dispatcher sends a call with a meta tensor to the Meta kernel (the fake implementation), which refuses it; if
    # it chose the CUDA kernel instead, that refuses it too. Either way: an exception naming b_g_idx, no garbage.
    with pytest.raises((ValueError, RuntimeError), match="^b_g_idx: "):
        ops.gptq_gemm(x, t["qweight"], t["qzeros"], t["scales"], torch.empty((1, 1), device="meta"), True, False, 4)


@pytest.mark.parametrize("kernel", WORKSPACE_KERNELS)
def test_two_streams_concurrently(kernel):
    """Two streams run the deterministic kernel on different layers at once, 200 times each: every output must equal,
    bit for bit, the one computed alone (a shared workspace gave wrong outputs in 198 of 200 runs)."""
    layers = [make_layer(8192, 1024, 128, seed=16 + i)[0] for i in range(2)]
    xs = [activations(8, 8192, seed=30 + i) for i in range(2)]
    alone = [opt4gptq.gemm(x, t["qweight"], t["qzeros"], t["scales"], kernel=kernel) for x, t in zip(xs, layers)]
    torch.cuda.synchronize()
    streams = [torch.cuda.Stream() for _ in range(2)]
    outs = [[], []]

    def worker(i):
        with torch.cuda.stream(streams[i]):
            t = layers[i]
            for _ in range(200):
                outs[i].append(opt4gptq.gemm(xs[i], t["qweight"], t["qzeros"], t["scales"], kernel=kernel))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    torch.cuda.synchronize()
    for i in range(2):
        wrong = sum(not torch.equal(o, alone[i]) for o in outs[i])
        assert wrong == 0, f"stream {i}: {wrong} of 200 outputs differ from the single-stream result"
