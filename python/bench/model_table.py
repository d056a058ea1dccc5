#!/usr/bin/env python3
"""The paper's Table 1 at model level: decode throughput of six GPTQ models with each kernel, as an engine runs them.

    python3 python/bench/model_table.py --out DIR [--models Llama-2-7B,Qwen1.5-1.8B] [--batches 1,8,32]
        [--kernels dense,baseline,smb,vml,ila,opt4gptq,auto] [--steps 16] [--act-order-models Llama-2-7B]
        [--check-steps 64] [--check-kernels auto,baseline|all|none] [--layers N]

For each model (dimensions from its published config, python/bench/configs/*.json; nothing is downloaded):
  - a compact decoder of its architecture with random weights: embedding, per layer RMSNorm, fused qkv (with bias for
    Qwen1.5), RoPE, GQA attention over a static KV cache (SDPA), o, RMSNorm, fused gate_up, SiLU gate, down; final
    norm and an fp16 LM head (GPTQ checkpoints keep it unquantized);
  - every linear quantized to the real GPTQ layout (group 128, round to nearest, v1 zero points; for the models in
    --act-order-models a second run with act-order: a random permutation's g_idx, rows quantized in that order and
    prepared once with opt4gptq's prepare_act_order);
  - "dense" runs the same model with the dequantized weights in fp16 (cuBLAS); the others run the opt4gptq kernel of
    that name (the paper's presets, and "auto" = the dispatch table);
  - decode throughput: one decode step (all layers, the LM head, greedy argmax fed back) captured in a CUDA graph,
    replayed --steps times, 3 repeats, median; tokens/s = batch * steps / time;
  - the check: greedy tokens for a fixed prompt and --check-steps steps at batch 1 with each checked kernel, against
    the dense fp16 model (same dequantized weights): whether the tokens are equal (and where they first differ), the
    teacher-forced top-1 agreement (both models fed the dense model's tokens) and the max / relative logits error.
Writes DIR/table.md (gains over Baseline per model in the paper's Table 1 form, beside the paper's DCU numbers), DIR/
table.csv (every measurement) and DIR/gains.png (or gains.svg without matplotlib). Prints timings as it goes.
"""
import argparse
import csv
import gc
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import opt4gptq

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ["Meta-Llama-3-8B", "Llama-2-7B", "CodeLlama-7B", "LLaMa-13B", "Qwen1.5-4B", "Qwen1.5-1.8B"]
PAPER_COLUMNS = ["smb", "vml", "ila", "opt4gptq"]  # gains over baseline, as the paper's Table 1
LABEL = {"dense": "dense fp16", "baseline": "Baseline", "smb": "SMB", "vml": "VML", "ila": "ILA",
         "opt4gptq": "Opt4GPTQ", "auto": "auto (dispatch)", "deterministic": "Deterministic",
         "tensorcore": "TensorCore", "tensorcore_deterministic": "TensorCoreDeterministic",
         "deterministic_f32": "DeterministicF32", "decode": "Decode", "tensorcore_pipelined": "TensorCorePipelined",
         "tensorcore_pipelined_deterministic": "TensorCorePipelinedDeterministic", "dequant_matmul": "DequantMatmul"}
GROUP_SIZE = 128
PROMPT_LEN = 16
T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


# ---- the model ---------------------------------------------------------------------------------------------------------

class Linear:
    """One linear layer, fused as engines run it: the GPTQ tensors (or the prepared act-order buffer) for the opt4gptq
    kernels, and the dequantized fp16 weight [K, N] for the dense run. `mode` picks: "dense" or a kernel name."""

    def __init__(self, k, n, act_order, gen, std):
        weight = torch.randn(n, k, device="cuda", dtype=torch.float32, generator=gen.cuda) * std
        t = opt4gptq.quantize(weight, group_size=GROUP_SIZE, sym=True, checkpoint_format="gptq", act_order=act_order,
                              generator=gen.cpu)
        del weight
        self.k, self.n, self.act_order = k, n, act_order
        self.qzeros, self.scales = t["qzeros"], t["scales"]
        self.dense = opt4gptq.dequantize(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], "gptq",
                                         dtype=torch.float32).half()
        if act_order:
            self.qweight = None
            self.prepared = opt4gptq.prepare_act_order(t["qweight"], t["g_idx"], t["scales"].shape[0])
        else:
            self.qweight, self.prepared = t["qweight"], None
        self.mode = "dense"

    def __call__(self, x):
        if self.mode == "dense":
            return x @ self.dense
        return torch.ops.opt4gptq.gemm(x, self.qweight, self.qzeros, self.scales, self.prepared, GROUP_SIZE, False,
                                       self.mode)


class Gen:
    """Seeded generators: CUDA for the weights, CPU for the act-order permutations (quantize draws them there)."""

    def __init__(self, seed):
        self.cuda = torch.Generator(device="cuda").manual_seed(seed)
        self.cpu = torch.Generator().manual_seed(seed)


class Decoder:
    def __init__(self, cfg, act_order, seed=0, layers=None, max_seq=128):
        self.cfg = cfg
        h, inter = cfg["hidden_size"], cfg["intermediate_size"]
        self.heads, self.kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.head_dim = h // self.heads
        self.eps = cfg["rms_norm_eps"]
        self.n_layers = layers or cfg["num_hidden_layers"]
        self.max_seq = max_seq
        g = Gen(seed)
        lg = g.cuda
        qkv_n = (self.heads + 2 * self.kv_heads) * self.head_dim
        # std 1/sqrt(fan_in): activations stay O(1) through the depth (RMSNorm before every block).
        self.layers = []
        for _ in range(self.n_layers):
            layer = dict(
                qkv=Linear(h, qkv_n, act_order, g, h ** -0.5),
                o=Linear(self.heads * self.head_dim, h, act_order, g, h ** -0.5),
                gate_up=Linear(h, 2 * inter, act_order, g, h ** -0.5),
                down=Linear(inter, h, act_order, g, inter ** -0.5),
                norm1=(1 + 0.1 * torch.randn(h, device="cuda", generator=lg)).half(),
                norm2=(1 + 0.1 * torch.randn(h, device="cuda", generator=lg)).half(),
                qkv_bias=(0.1 * torch.randn(qkv_n, device="cuda", generator=lg)).half() if cfg["qkv_bias"] else None,
            )
            self.layers.append(layer)
        vocab = cfg["vocab_size"]
        self.embed = torch.randn(vocab, h, device="cuda", generator=lg).half()
        self.norm = (1 + 0.1 * torch.randn(h, device="cuda", generator=lg)).half()
        # LM head [H, V]; scaled so that the logits spread (std ~4): a random model then prefers some tokens clearly.
        self.lm_head = (torch.randn(h, vocab, device="cuda", generator=lg) * (4 * h ** -0.5)).half()
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, self.head_dim, 2, device="cuda").float() / self.head_dim))
        freqs = torch.outer(torch.arange(max_seq, device="cuda").float(), inv)
        self.cos, self.sin = freqs.cos().half(), freqs.sin().half()  # [S, D/2]
        self.positions = torch.arange(max_seq, device="cuda")

    def linears(self):
        for layer in self.layers:
            for name in ("qkv", "o", "gate_up", "down"):
                yield name, layer[name]

    def set_mode(self, mode):
        for _, lin in self.linears():
            lin.mode = mode

    def new_cache(self, batch):
        shape = (batch, self.kv_heads, self.max_seq, self.head_dim)
        return [(torch.zeros(shape, dtype=torch.float16, device="cuda"),
                 torch.zeros(shape, dtype=torch.float16, device="cuda")) for _ in range(self.n_layers)]

    def rms_norm(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).half() * w

    def rope(self, x, cos, sin):  # x [B, heads, 1, D], rotate-half convention
        x1, x2 = x[..., : self.head_dim // 2], x[..., self.head_dim // 2:]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

    def step(self, tokens, pos, cache):
        """One decode step for a batch at position `pos` (a 1-element int64 CUDA tensor): returns logits [B, V].
        Capturable: positions are device tensors, the cache is written with index_copy_."""
        b = tokens.shape[0]
        hd = self.head_dim
        x = F.embedding(tokens, self.embed)  # [B, H]
        cos = self.cos.index_select(0, pos).view(1, 1, 1, hd // 2)
        sin = self.sin.index_select(0, pos).view(1, 1, 1, hd // 2)
        mask = (self.positions <= pos).view(1, 1, 1, self.max_seq)
        for layer, (k_cache, v_cache) in zip(self.layers, cache):
            qkv = layer["qkv"](self.rms_norm(x, layer["norm1"]))
            if layer["qkv_bias"] is not None:
                qkv = qkv + layer["qkv_bias"]
            q, k, v = qkv.split([self.heads * hd, self.kv_heads * hd, self.kv_heads * hd], dim=-1)
            q = self.rope(q.view(b, self.heads, 1, hd), cos, sin)
            k = self.rope(k.view(b, self.kv_heads, 1, hd), cos, sin)
            k_cache.index_copy_(2, pos, k)
            v_cache.index_copy_(2, pos, v.view(b, self.kv_heads, 1, hd))
            attn = F.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=mask,
                                                  enable_gqa=self.kv_heads != self.heads)
            x = x + layer["o"](attn.reshape(b, self.heads * hd))
            gate, up = layer["gate_up"](self.rms_norm(x, layer["norm2"])).chunk(2, dim=-1)
            x = x + layer["down"](F.silu(gate) * up)
        return self.rms_norm(x, self.norm) @ self.lm_head

    @torch.no_grad()
    def greedy(self, prompt, steps, forced=None):
        """Batch-1 greedy decoding, eager: the prompt token by token, then `steps` tokens. With `forced`, the input of
        each step is forced[i - 1] (teacher forcing) instead of the model's own choice. Returns (tokens, logits)."""
        cache = self.new_cache(1)
        pos = torch.zeros(1, dtype=torch.long, device="cuda")
        logits = None
        for i, t in enumerate(prompt):
            pos.fill_(i)
            logits = self.step(torch.tensor([t], device="cuda"), pos, cache)
        tokens, all_logits = [], []
        for i in range(steps):
            token = int(logits[0].argmax())
            tokens.append(token)
            all_logits.append(logits[0].float())
            pos.fill_(len(prompt) + i)
            feed = forced[i] if forced is not None else token
            logits = self.step(torch.tensor([feed], device="cuda"), pos, cache)
        return tokens, torch.stack(all_logits)


# ---- measurements ------------------------------------------------------------------------------------------------------

@torch.no_grad()
def decode_throughput(model, batch, steps, repeats=3):
    """Tokens/s of graph-replayed decode steps at `batch`; the step feeds its argmax back and advances the position."""
    cache = model.new_cache(batch)
    tokens = torch.randint(0, model.cfg["vocab_size"], (batch,), device="cuda")
    pos = torch.full((1,), PROMPT_LEN, dtype=torch.long, device="cuda")

    def step():
        logits = model.step(tokens, pos, cache)
        tokens.copy_(logits.argmax(-1))
        pos.add_(1)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):  # warm-up outside capture: kernels loaded, plans and occupancy cached
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    times = []
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(repeats):
        pos.fill_(PROMPT_LEN)
        graph.replay()  # one untimed replay: clocks up, caches warm
        torch.cuda.synchronize()
        start.record()
        for _ in range(steps):
            graph.replay()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1000.0)
    del graph
    seconds = statistics.median(times)
    return batch * steps / seconds, seconds / steps * 1000.0


def check_outputs(model, kernels, steps):
    """Greedy tokens of each kernel against the dense fp16 model (batch 1, fixed prompt)."""
    prompt = list(range(11, 11 + PROMPT_LEN))
    model.set_mode("dense")
    ref_tokens, ref_logits = model.greedy(prompt, steps)
    rows = []
    for kernel in kernels:
        model.set_mode(kernel)
        tokens, _ = model.greedy(prompt, steps)
        _, forced_logits = model.greedy(prompt, steps, forced=ref_tokens)
        first_diff = next((i for i, (a, b) in enumerate(zip(tokens, ref_tokens)) if a != b), None)
        agree = (forced_logits.argmax(-1).cpu() == torch.tensor(ref_tokens)).float().mean().item()
        diff = (forced_logits - ref_logits).abs()
        rel = ((forced_logits - ref_logits).norm() / ref_logits.norm()).item()
        rows.append(dict(kernel=kernel, equal=first_diff is None, first_diff=first_diff, agreement=agree,
                         max_logit_err=diff.max().item(), rel_logit_err=rel,
                         finite=bool(torch.isfinite(forced_logits).all())))
        log(f"  check {kernel:13s}: tokens {'equal' if first_diff is None else f'differ from step {first_diff}'} "
            f"over {steps} steps; teacher-forced top-1 agreement {100 * agree:.1f}%, max |logit error| "
            f"{diff.max().item():.3g}, relative {rel:.2e}")
    model.set_mode("dense")
    return rows


# ---- report ------------------------------------------------------------------------------------------------------------

def gain(results, model, act, batch, kernel):
    base = results.get((model, act, batch, "baseline"))
    this = results.get((model, act, batch, kernel))
    return None if not base or not this else this / base


def fmt_gain(g):
    return "-" if g is None else f"{100 * (g - 1):+.1f}%"


def write_report(out, results, rows, checks, args, device):
    with open(os.path.join(out, "table.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "act_order", "batch", "kernel", "tokens_per_s", "ms_per_step", "gain_over_baseline"])
        for r in rows:
            g = gain(results, r["model"], r["act_order"], r["batch"], r["kernel"])
            w.writerow([r["model"], r["act_order"], r["batch"], r["kernel"], f"{r['tokens_per_s']:.1f}",
                        f"{r['ms_per_step']:.3f}", "" if g is None else f"{g:.4f}"])
    models = [m for m in args.models]
    variants = [(m, False) for m in models] + [(m, True) for m in models if m in args.act_order_models]
    kernels = [k for k in args.kernels if k != "baseline"]
    lines = [f"# Decode throughput at model level: gains over Baseline ({device})", "",
             f"Generated by python/bench/model_table.py on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
             f"random weights, every linear GPTQ 4-bit (group {GROUP_SIZE}, v1 zeros, round to nearest), fp16 "
             f"activations, static KV cache, one decode step per CUDA graph replay, {args.steps} steps x 3 repeats "
             f"(median). Gain = tokens/s of the kernel / tokens/s of Baseline - 1.", ""]
    for batch in args.batches:
        lines += [f"## Batch {batch}" + (" (the paper's setting)" if batch == 32 else ""), "",
                  "| model | Baseline tok/s | " + " | ".join(LABEL.get(k, k) for k in kernels) + " |",
                  "|---|---|" + "---|" * len(kernels)]
        for m, act in variants:
            base = results.get((m, act, batch, "baseline"))
            cells = [fmt_gain(gain(results, m, act, batch, k)) for k in kernels]
            lines.append(f"| {m}{' act-order' if act else ''} | {'-' if base is None else f'{base:.0f}'} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## The paper's Table 1 (HYGON DCU Z100, batch 32) for reference", "",
              "The paper (arXiv 2511.19438) measures vLLM serving throughput of the same six models on a HYGON DCU Z100 "
              "at batch 32 and reports gains of Opt4GPTQ over its baseline of up to 84.42% in throughput and up to "
              "51.35% in latency (abstract). Its per-model figures are not reproduced here: the paper's text was not "
              "available offline when this table was made, and numbers are not copied from memory. The settings also "
              "differ: the DCU's global atomics are slow, which SMB-Opt removes; on the H200 the atomics of the "
              "baseline are cheap, so SMB costs time (its extra barrier) and VML/ILA change little, as the kernel "
              "benchmark shows (bench/results/).", ""]
    lines += ["", "## Output check (batch 1, fixed prompt, greedy)", "",
              "Each kernel's greedy tokens against the same model with the dequantized weights in fp16 PyTorch "
              "(cuBLAS). Random-weight models have close logits, so a rounding difference can flip a near tie and the "
              "sequences then part; the teacher-forced columns (both models fed the dense model's tokens) say how "
              "close the logits are at every step.", "",
              "| model | kernel | tokens equal | first difference | teacher-forced top-1 agreement | max abs logit error "
              "| relative logit error |", "|---|---|---|---|---|---|---|"]
    for (m, act), rows_ in checks.items():
        for c in rows_:
            lines.append(f"| {m}{' act-order' if act else ''} | {c['kernel']} | {'yes' if c['equal'] else 'no'} | "
                         f"{'-' if c['first_diff'] is None else c['first_diff']} | {100 * c['agreement']:.1f}% | "
                         f"{c['max_logit_err']:.3g} | {c['rel_logit_err']:.2e} |")
    lines += ["", "All measurements: table.csv. Plot: gains.png (gain over Baseline per model and kernel)."]
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot(out, results, variants, kernels, args.batches)


def plot(out, results, variants, kernels, batches):
    data = {b: [[gain(results, m, act, b, k) for k in kernels] for m, act in variants] for b in batches}
    names = [f"{m}{' (act-order)' if act else ''}" for m, act in variants]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return plot_svg(out, data, names, kernels, batches)
    fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 4.5), squeeze=False)
    width = 0.8 / max(1, len(kernels))
    for ax, b in zip(axes[0], batches):
        for j, k in enumerate(kernels):
            ys = [100 * ((data[b][i][j] or 1) - 1) for i in range(len(names))]
            ax.bar([i + j * width for i in range(len(names))], ys, width, label=LABEL.get(k, k))
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks([i + width * (len(kernels) - 1) / 2 for i in range(len(names))])
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("decode tokens/s gain over Baseline (%)")
        ax.set_title(f"batch {b}")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "gains.png"), dpi=120)


def plot_svg(out, data, names, kernels, batches):
    """The same bars as a hand-written SVG, for machines without matplotlib."""
    colors = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000"]
    panel_w, panel_h, top = 80 + 60 * len(names), 320, 30
    values = [100 * ((v or 1) - 1) for b in batches for row in data[b] for v in row] or [0]
    lo, hi = min(min(values), 0), max(max(values), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{panel_w * len(batches)}" height="{panel_h + 120}" '
             f'font-family="sans-serif" font-size="10">']
    for p, b in enumerate(batches):
        x0 = p * panel_w + 50

        def y(v):
            return top + (hi - v) / (hi - lo) * (panel_h - top)
        parts.append(f'<text x="{x0}" y="15">batch {b}: gain over Baseline (%), {lo:.0f} .. {hi:.0f}</text>')
        parts.append(f'<line x1="{x0}" x2="{x0 + 60 * len(names)}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="black"/>')
        for i, name in enumerate(names):
            for j, _ in enumerate(kernels):
                v = 100 * ((data[b][i][j] or 1) - 1)
                bx = x0 + 60 * i + j * 50 / max(1, len(kernels))
                parts.append(f'<rect x="{bx:.1f}" y="{min(y(v), y(0)):.1f}" width="{50 / max(1, len(kernels)):.1f}" '
                             f'height="{abs(y(v) - y(0)):.1f}" fill="{colors[j % len(colors)]}"/>')
            parts.append(f'<text x="{x0 + 60 * i}" y="{panel_h + 15}" transform="rotate(30 {x0 + 60 * i} '
                         f'{panel_h + 15})">{name}</text>')
    for j, k in enumerate(kernels):
        parts.append(f'<rect x="{10 + 110 * j}" y="{panel_h + 95}" width="10" height="10" '
                     f'fill="{colors[j % len(colors)]}"/><text x="{24 + 110 * j}" y="{panel_h + 104}">'
                     f'{LABEL.get(k, k)}</text>')
    parts.append("</svg>")
    with open(os.path.join(out, "gains.svg"), "w") as f:
        f.write("\n".join(parts))


# ---- main --------------------------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--kernels", default="dense,baseline,smb,vml,ila,opt4gptq,auto")
    parser.add_argument("--steps", type=int, default=16, help="graph replays per timing (3 timings, median)")
    parser.add_argument("--act-order-models", default="Llama-2-7B",
                        help="models also run with act-order weights ('' for none)")
    parser.add_argument("--check-steps", type=int, default=64)
    parser.add_argument("--check-kernels", default="auto,baseline",
                        help="kernels whose outputs are checked: a list, 'all' (every kernel run but dense) or 'none'")
    parser.add_argument("--layers", type=int, default=0, help="override the layer count (quick runs)")
    args = parser.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.kernels = [k for k in args.kernels.split(",") if k]
    if "baseline" not in args.kernels:
        args.kernels.insert(0, "baseline")  # every gain is relative to it
    args.act_order_models = [m for m in args.act_order_models.split(",") if m]
    for k in args.kernels:
        if k != "dense" and k not in opt4gptq.KERNELS:
            parser.error(f"unknown kernel {k!r}: dense or one of {', '.join(opt4gptq.KERNELS)}")
    quant_kernels = [k for k in args.kernels if k != "dense"]
    check_kernels = ([] if args.check_kernels == "none" else quant_kernels if args.check_kernels == "all"
                     else args.check_kernels.split(","))
    os.makedirs(args.out, exist_ok=True)
    if not torch.cuda.is_available():
        print("No CUDA GPU visible: the model table needs one.")
        return 77
    device = f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    log(f"device: {device}; models {args.models}; batches {args.batches}; kernels {args.kernels}")
    max_seq = max(PROMPT_LEN + args.check_steps + 1, PROMPT_LEN + 4 + 4 * (args.steps + 1)) + 8
    results, rows, checks = {}, [], {}
    for name in args.models:
        with open(os.path.join(HERE, "configs", f"{name}.json")) as f:
            cfg = json.load(f)
        for act in ([False, True] if name in args.act_order_models else [False]):
            t = time.time()
            model = Decoder(cfg, act_order=act, seed=1234, layers=args.layers or None, max_seq=max_seq)
            torch.cuda.synchronize()
            label = f"{name}{' act-order' if act else ''}"
            log(f"{label}: {model.n_layers} layers built and quantized in {time.time() - t:.1f} s "
                f"(GPU memory {torch.cuda.memory_allocated() / 2 ** 30:.1f} GiB)")
            for b in args.batches:
                picks = {n: opt4gptq.choose_kernel(b, lin.k, lin.n, lin.scales.shape[0], act)
                         for n, lin in model.linears()}
                log(f"  auto at batch {b}: {picks}")
            kernels = [k for k in args.kernels if not (act and k == "dense")]
            for b in args.batches:
                for k in kernels:
                    model.set_mode(k)
                    t = time.time()
                    tok_s, ms = decode_throughput(model, b, args.steps)
                    results[(name, act, b, k)] = tok_s
                    rows.append(dict(model=name, act_order=act, batch=b, kernel=k, tokens_per_s=tok_s, ms_per_step=ms))
                    log(f"  {label:22s} batch {b:3d} {k:10s}: {tok_s:9.1f} tokens/s ({ms:.3f} ms/step; "
                        f"{time.time() - t:.1f} s incl. capture)")
            if check_kernels and args.check_steps > 0:
                t = time.time()
                checks[(name, act)] = check_outputs(model, check_kernels, args.check_steps)
                log(f"  check done in {time.time() - t:.1f} s")
            model.set_mode("dense")
            del model
            gc.collect()
            torch.cuda.empty_cache()
            write_report(args.out, results, rows, checks, args, device)  # after every model: partial results survive
    write_report(args.out, results, rows, checks, args, device)
    bad = [(m, c["kernel"]) for (m, _), cs in checks.items() for c in cs
           if not c["finite"] or c["rel_logit_err"] > 5e-2]
    log(f"done: {os.path.join(args.out, 'table.md')}"
        + (f"; OUTPUT CHECK FAILED (non-finite or relative logit error > 5e-2): {bad}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
