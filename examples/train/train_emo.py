"""Trains one tiny MoE of the `emo` family on the bundled corpus (examples/data) and saves it in the
Hugging Face `emo` layout (config.json, BF16 model.safetensors, tokenizer.json, README.md card).

Three variants share everything (size, data order, steps, seed, tokenizer) but the routing during
training:
  emo      document-level pools, as EMO (arXiv 2605.06663) trains: per layer and training sequence
           (one document window) the router's routed-expert probabilities are summed over the
           sequence's tokens, the top-P routed experts form the pool (P drawn per sequence between
           E/8 and E-1), the others' logits are set to -inf for that sequence's tokens;
  random   the same pools, drawn at random (the ablation);
  standard no pools.
All three have one always-on shared expert (the last, weight 1.0) and a load-balancing loss over
the whole batch on the unmasked router probabilities. Inference is the `emo` family's forward:
pre-norm blocks, RoPE (rotate-half), causal attention, split softmax (top-(k-1) of the routed
softmax, no renormalisation, plus the shared expert), untied LM head.

Run with /usr/bin/python3 (Debian's python3-torch), one thread per model:
  /usr/bin/python3 examples/train/train_emo.py --variant emo --out examples/models/emo-style
Check a saved model against moeslice's logits (used by tests/cli/example_models.sh):
  /usr/bin/python3 examples/train/train_emo.py --check-logits LOGITS.safetensors \
      --model DIR --corpus FILE.jsonl
"""
import argparse
import glob
import json
import math
import os
import random
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_tokenizer import Encoder  # noqa: E402

VARIANT_NAMES = {"emo": "EMO-style document pools", "random": "random document pools (ablation)",
                 "standard": "standard MoE (no pools)"}


# ---- model ------------------------------------------------------------------------------------
class Config:
    def __init__(self, vocab, hidden=128, layers=4, heads=4, experts=32, top_k=4, width=128,
                 context=256, theta=10000.0, eps=1e-6):
        self.vocab, self.hidden, self.layers, self.heads = vocab, hidden, layers, heads
        self.experts, self.top_k, self.width, self.context = experts, top_k, width, context
        self.theta, self.eps = theta, eps
        self.head_dim = hidden // heads

    def hf_config(self, eot_id):
        return {
            "architectures": ["EmoForCausalLM"], "model_type": "emo",
            "vocab_size": self.vocab, "hidden_size": self.hidden, "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads, "num_key_value_heads": self.heads,
            "head_dim": self.head_dim, "intermediate_size": self.width,
            "num_experts": self.experts, "num_experts_per_tok": self.top_k, "num_shared_experts": 1,
            "norm_topk_prob": False, "hidden_act": "silu", "rms_norm_eps": self.eps,
            "rope_theta": self.theta, "rope_scaling": None,
            "max_position_embeddings": self.context, "attention_bias": False,
            "attention_dropout": 0.0, "tie_word_embeddings": False, "output_router_logits": False,
            "router_aux_loss_coef": 0.01, "pad_token_id": eot_id, "bos_token_id": None,
            "eos_token_id": eot_id, "torch_dtype": "bfloat16",
        }


def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


class Model(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        H, I, E = cfg.hidden, cfg.width, cfg.experts
        p = {}
        std = 0.02
        p["model.embed_tokens.weight"] = torch.nn.Parameter(torch.randn(cfg.vocab, H) * std)
        for l in range(cfg.layers):
            pre = f"model.layers.{l}."
            p[pre + "pre_attention_layernorm.weight"] = torch.nn.Parameter(torch.ones(H))
            for name in ("q", "k", "v"):
                p[pre + f"self_attn.{name}_proj.weight"] = torch.nn.Parameter(torch.randn(H, H) * std)
            p[pre + "self_attn.o_proj.weight"] = torch.nn.Parameter(
                torch.randn(H, H) * std / math.sqrt(2 * cfg.layers))
            p[pre + "pre_feedforward_layernorm.weight"] = torch.nn.Parameter(torch.ones(H))
            p[pre + "mlp.gate.weight"] = torch.nn.Parameter(torch.randn(E, H) * std)
            for e in range(E):
                ep = pre + f"mlp.experts.{e}."
                p[ep + "gate_proj.weight"] = torch.nn.Parameter(torch.randn(I, H) * std)
                p[ep + "up_proj.weight"] = torch.nn.Parameter(torch.randn(I, H) * std)
                p[ep + "down_proj.weight"] = torch.nn.Parameter(
                    torch.randn(H, I) * std / math.sqrt(2 * cfg.layers))
        p["model.norm.weight"] = torch.nn.Parameter(torch.ones(H))
        p["lm_head.weight"] = torch.nn.Parameter(torch.randn(cfg.vocab, H) * std)
        # ParameterDict keys may not contain '.', so names are stored with '/' instead.
        self.params = torch.nn.ParameterDict({k.replace(".", "/"): v for k, v in p.items()})

    def w(self, name):
        return self.params[name.replace(".", "/")]

    def named_tensors(self):
        return {k.replace("/", "."): v for k, v in self.params.items()}

    def rope(self, x):
        """x [B, T, heads, hd], rotate-half RoPE with inv_freq = theta^(-2j/d)."""
        T, hd = x.shape[1], x.shape[-1]
        inv = 1.0 / (self.cfg.theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        freqs = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]
        half = hd // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def attention(self, x, l):
        cfg = self.cfg
        B, T, H = x.shape
        pre = f"model.layers.{l}.self_attn."
        q = F.linear(x, self.w(pre + "q_proj.weight")).view(B, T, cfg.heads, cfg.head_dim)
        k = F.linear(x, self.w(pre + "k_proj.weight")).view(B, T, cfg.heads, cfg.head_dim)
        v = F.linear(x, self.w(pre + "v_proj.weight")).view(B, T, cfg.heads, cfg.head_dim)
        q, k = self.rope(q).transpose(1, 2), self.rope(k).transpose(1, 2)
        v = v.transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * cfg.head_dim ** -0.5
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        probs = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H)
        return F.linear(out, self.w(pre + "o_proj.weight"))

    def moe(self, x, l, pool_mode, generator, stats):
        """x [B, T, H]. pool_mode: None (inference / standard), "emo" or "random"."""
        cfg = self.cfg
        B, T, H = x.shape
        E, Er, k_routed = cfg.experts, cfg.experts - 1, cfg.top_k - 1
        pre = f"model.layers.{l}.mlp."
        logits = F.linear(x, self.w(pre + "gate.weight"))          # [B, T, E]
        routed_logits = logits[..., :Er]
        probs_full = torch.softmax(routed_logits, dim=-1)          # unmasked, for balancing
        if pool_mode is not None:
            sizes = torch.randint(max(E // 8, k_routed), Er + 1, (B,), generator=generator)
            if pool_mode == "emo":
                score = probs_full.detach().sum(dim=1)             # [B, Er] per sequence
            else:
                score = torch.rand(B, Er, generator=generator)
            order = score.argsort(dim=-1, descending=True)
            rank = torch.empty_like(order)
            rank.scatter_(1, order, torch.arange(Er).expand(B, Er).contiguous())
            in_pool = rank < sizes[:, None]                         # [B, Er]
            routed_logits = routed_logits.masked_fill(~in_pool[:, None, :], float("-inf"))
        probs = torch.softmax(routed_logits, dim=-1)
        weights, ids = torch.topk(probs, k_routed, dim=-1)          # no renormalisation
        flat_x = x.reshape(-1, H)
        flat_w = weights.reshape(-1, k_routed)
        flat_ids = ids.reshape(-1, k_routed)
        out = torch.zeros_like(flat_x)
        for e in range(Er):
            token, slot = (flat_ids == e).nonzero(as_tuple=True)
            if token.numel() == 0:
                continue
            y = self.expert(flat_x[token], pre + f"experts.{e}.")
            out.index_add_(0, token, y * flat_w[token, slot, None])
        out = out + self.expert(flat_x, pre + f"experts.{Er}.")    # shared expert, weight 1.0
        if stats is not None:
            # Switch-style balancing over the whole batch: Er * sum_e f_e * P_e.
            chosen = F.one_hot(flat_ids, Er).sum(dim=1).float().mean(dim=0) / k_routed
            stats["balance"] = stats.get("balance", 0.0) + Er * (chosen * probs_full.reshape(-1, Er).mean(0)).sum()
            stats["z"] = stats.get("z", 0.0) + torch.logsumexp(logits, dim=-1).pow(2).mean()
        return out.view(B, T, H)

    def expert(self, x, prefix):
        g = F.linear(x, self.w(prefix + "gate_proj.weight"))
        u = F.linear(x, self.w(prefix + "up_proj.weight"))
        return F.linear(F.silu(g) * u, self.w(prefix + "down_proj.weight"))

    def forward(self, tokens, pool_mode=None, generator=None, stats=None):
        cfg = self.cfg
        x = F.embedding(tokens, self.w("model.embed_tokens.weight"))
        for l in range(cfg.layers):
            pre = f"model.layers.{l}."
            x = x + self.attention(rms_norm(x, self.w(pre + "pre_attention_layernorm.weight"), cfg.eps), l)
            x = x + self.moe(rms_norm(x, self.w(pre + "pre_feedforward_layernorm.weight"), cfg.eps), l,
                             pool_mode, generator, stats)
        x = rms_norm(x, self.w("model.norm.weight"), cfg.eps)
        return F.linear(x, self.w("lm_head.weight"))


# ---- safetensors (the tiny subset we need) ----------------------------------------------------
DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.int32: "I32"}
FROM_CODE = {"F32": torch.float32, "BF16": torch.bfloat16, "I32": torch.int32}


def save_safetensors(tensors, path, metadata=None):
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for c in chunks:
            out.write(c)
    os.replace(tmp, path)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[begin:end])
        dtype = FROM_CODE[info["dtype"]]
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


# ---- data -------------------------------------------------------------------------------------
def read_split(data_dir, split):
    docs = []
    for path in sorted(glob.glob(os.path.join(data_dir, "*", f"{split}.jsonl"))):
        with open(path, encoding="utf-8") as lines:
            docs.extend(json.loads(line) for line in lines if line.strip())
    if not docs:
        sys.exit(f"train_emo: no */{split}.jsonl under {data_dir}")
    return docs


def encode_docs(docs, encoder, min_tokens=16):
    by_domain = {}
    for d in docs:
        ids = encoder.encode(d["text"])
        if len(ids) >= min_tokens:
            by_domain.setdefault(d["domain"], []).append(ids)
    return by_domain


def sample_batch(by_domain, batch, context, pad_id, rng):
    """One window of context+1 tokens from a random document of a random domain per row."""
    domains = sorted(by_domain)
    inputs = torch.full((batch, context), pad_id, dtype=torch.long)
    targets = torch.full((batch, context), -100, dtype=torch.long)
    for b in range(batch):
        docs = by_domain[domains[rng.randrange(len(domains))]]
        ids = docs[rng.randrange(len(docs))]
        start = rng.randrange(max(1, len(ids) - context))
        window = ids[start:start + context + 1]
        n = len(window) - 1
        inputs[b, :n] = torch.tensor(window[:-1])
        targets[b, :n] = torch.tensor(window[1:])
    return inputs, targets


def evaluate_bits_per_token(model, by_domain, context, pad_id, seed, batches=4, batch=16):
    rng = random.Random(seed)
    total, count = 0.0, 0
    with torch.no_grad():
        for _ in range(batches):
            x, y = sample_batch(by_domain, batch, context, pad_id, rng)
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100,
                                   reduction="sum")
            total += loss.item()
            count += (y != -100).sum().item()
    return total / count / math.log(2)


# ---- training ---------------------------------------------------------------------------------
def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    encoder = Encoder(args.tokenizer)
    cfg = Config(vocab=encoder.vocab_size)
    train_docs = encode_docs(read_split(args.data, "train"), encoder)
    valid_docs = encode_docs(read_split(args.data, "validation"), encoder)
    model = Model(cfg)
    decay = [p for n, p in model.params.items() if p.dim() >= 2]
    no_decay = [p for n, p in model.params.items() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    data_rng = random.Random(args.seed)          # same data order for every variant
    pool_gen = torch.Generator().manual_seed(args.seed + 1)
    pool_mode = {"emo": "emo", "random": "random", "standard": None}[args.variant]
    log = []
    start = time.time()
    for step in range(1, args.steps + 1):
        lr = args.lr * (step / args.warmup if step <= args.warmup else
                        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - args.warmup) / (args.steps - args.warmup))))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = sample_batch(train_docs, args.batch, cfg.context, encoder.eot_id, data_rng)
        stats = {}
        logits = model(x, pool_mode, pool_gen, stats)
        lm_loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1), ignore_index=-100)
        loss = lm_loss + args.balance * stats["balance"] / cfg.layers + args.z_loss * stats["z"] / cfg.layers
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % args.log_every == 0 or step == args.steps:
            entry = {"step": step, "seconds": round(time.time() - start, 1), "lr": round(lr, 6),
                     "train_loss": round(lm_loss.item(), 4),
                     "balance": round(stats["balance"].item() / cfg.layers, 4)}
            if step % (args.log_every * 10) == 0 or step == args.steps:
                entry["valid_bits_per_token"] = round(
                    evaluate_bits_per_token(model, valid_docs, cfg.context, encoder.eot_id, args.seed), 4)
            log.append(entry)
            print(json.dumps(entry), flush=True)
    seconds = time.time() - start
    save_model(model, cfg, encoder, args, log, seconds)


def save_model(model, cfg, encoder, args, log, seconds):
    os.makedirs(args.out, exist_ok=True)
    tensors = {k: v.detach().to(torch.bfloat16) for k, v in model.named_tensors().items()}
    save_safetensors(tensors, os.path.join(args.out, "model.safetensors"), {"format": "pt"})
    with open(os.path.join(args.out, "config.json"), "w") as out:
        json.dump(cfg.hf_config(encoder.eot_id), out, indent=2)
        out.write("\n")
    with open(args.tokenizer, encoding="utf-8") as src, \
            open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as dst:
        dst.write(src.read())
    with open(os.path.join(args.out, "training_log.jsonl"), "w") as out:
        for entry in log:
            out.write(json.dumps(entry) + "\n")
    params = sum(t.numel() for t in tensors.values())
    write_card(args, cfg, params, log, seconds)


def write_card(args, cfg, params, log, seconds):
    evals = [e for e in log if "valid_bits_per_token" in e]
    curve = "\n".join(f"| {e['step']} | {e['train_loss']:.3f} | {e['valid_bits_per_token']:.3f} |" for e in evals)
    card = f"""# {os.path.basename(os.path.normpath(args.out))}: a tiny `emo`-family MoE, {VARIANT_NAMES[args.variant]}

Trained by `examples/train/train_emo.py --variant {args.variant}` for moeslice's bundled example;
not a useful language model, a test subject for expert slicing. Loads as the `emo` family
(`model_type: emo`): moeslice runs it; its logits equal the training script's forward (checked
by tests/cli/example_models.sh).

| | |
|---|---|
| parameters | {params:,} ({params * 2 / 1e6:.1f} MB in BF16) |
| shape | {cfg.layers} layers, hidden {cfg.hidden}, {cfg.heads} heads, {cfg.experts} experts of width {cfg.width} ({cfg.experts - 1} routed + 1 shared, last), top-{cfg.top_k} including the shared one, context {cfg.context}, RoPE theta {cfg.theta:g}, untied head |
| tokenizer | byte-level BPE, {cfg.vocab} ids, trained on the training splits (examples/train/train_tokenizer.py) |
| training data | examples/data/*/train.jsonl: six domains (code, headers, licenses, speeches, email, manpages), one random {cfg.context + 1}-token window of a random document of a random domain per sequence |
| routing in training | {VARIANT_NAMES[args.variant]}; pool size per sequence and layer uniform in [{max(cfg.experts // 8, cfg.top_k - 1)}, {cfg.experts - 1}] routed experts where pools are used |
| steps | {args.steps} x batch {args.batch} x {cfg.context} tokens, seed {args.seed} |
| optimiser | AdamW (0.9, 0.95), weight decay 0.1 on matrices, lr {args.lr:g}, {args.warmup} warm-up steps, cosine to 10% |
| losses | next-token cross-entropy + {args.balance:g} x load balancing over the whole batch (unmasked router probabilities) + {args.z_loss:g} x router z-loss |
| time | {seconds / 60:.1f} minutes on {args.threads} thread(s) of a 2-core AMD EPYC, Debian python3-torch on OpenBLAS |
| saved | BF16 (trained in fp32) |

## Loss curve (validation: bits per token on 64 windows of the validation splits)

| step | train loss (nats/token) | validation bits/token |
|---|---|---|
{curve}

The full log is training_log.jsonl. Licences of the training text: examples/data/README.md.
"""
    with open(os.path.join(args.out, "README.md"), "w") as out:
        out.write(card)


# ---- checking moeslice's logits -----------------------------------------------------------------
def check_logits(args):
    """Runs this script's forward on the saved BF16 weights (in fp32) and compares with
    `moeslice logits` output for the same corpus. Exit 1 on a mismatch."""
    torch.set_num_threads(args.threads)
    cfg_json = json.load(open(os.path.join(args.model, "config.json")))
    cfg = Config(vocab=cfg_json["vocab_size"], hidden=cfg_json["hidden_size"], layers=cfg_json["num_hidden_layers"],
                 heads=cfg_json["num_attention_heads"], experts=cfg_json["num_experts"],
                 top_k=cfg_json["num_experts_per_tok"], width=cfg_json["intermediate_size"],
                 context=cfg_json["max_position_embeddings"], theta=cfg_json["rope_theta"], eps=cfg_json["rms_norm_eps"])
    model = Model(cfg)
    weights = load_safetensors(os.path.join(args.model, "model.safetensors"))
    with torch.no_grad():
        for name, t in model.named_tensors().items():
            t.copy_(weights[name].float())
    theirs = load_safetensors(args.check_logits)
    encoder = Encoder(os.path.join(args.model, "tokenizer.json"))
    records = [json.loads(line) for line in open(args.corpus, encoding="utf-8") if line.strip()]
    docs = [r["input_ids"] if "input_ids" in r else encoder.encode(r["text"]) for r in records]
    worst = 0.0
    for i, ids in enumerate(docs):
        got = theirs[f"doc.{i}"].double()
        if got.shape[0] != len(ids):
            print(f"doc {i}: moeslice has {got.shape[0]} positions, this tokenizer gives {len(ids)} tokens")
            return 1
        # Documents longer than the context are independent windows, as moeslice computes them.
        with torch.no_grad():
            ours = torch.cat([model(torch.tensor([ids[w:w + cfg.context]]))[0]
                              for w in range(0, len(ids), cfg.context)]).double()
        rel = ((got - ours).abs().max() / ours.abs().max()).item()
        worst = max(worst, rel)
        print(f"doc {i}: {len(ids)} tokens, max|diff|/max|ref| = {rel:.2e}")
    ok = worst <= args.tolerance
    print(f"{'OK' if ok else 'MISMATCH'}: worst {worst:.2e} (tolerance {args.tolerance:g})")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANT_NAMES), default="emo")
    parser.add_argument("--data", default="examples/data")
    parser.add_argument("--tokenizer", default="examples/models/tokenizer.json")
    parser.add_argument("--out")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--balance", type=float, default=0.01)
    parser.add_argument("--z-loss", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--check-logits", help="a `moeslice logits` output to compare with")
    parser.add_argument("--model", help="with --check-logits: the saved model directory")
    parser.add_argument("--corpus", help="with --check-logits: the token corpus given to moeslice")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()
    if args.check_logits:
        sys.exit(check_logits(args))
    if not args.out:
        parser.error("--out is required for training")
    train(args)


if __name__ == "__main__":
    main()
