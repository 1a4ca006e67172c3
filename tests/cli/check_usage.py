"""Checks a moeslice usage profile against the PyTorch reference's routing output.

Usage: check_usage.py USAGE.safetensors REFERENCE.safetensors CONFIG.json
The reference (tests/reference/reference_forward.py, float64) writes per document and MoE layer
the raw router logits, chosen experts, gate weights and expert output norms. From those:
counts = how often each expert was chosen; mass = sum of router probabilities (the family's own
softmax; EMO's split softmax; the raw sigmoid scores of group-limited sigmoid routers, 0 for a
dropped expert); gate_norm = sum of weight x output norm; gate_weight = sum of the weights (the
reference's are the applied ones, routed_scaling_factor included). Exits 1 on a mismatch.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
import torch  # noqa: E402
from safetensors_io import load_file  # noqa: E402


SIGMOID_FAMILIES = ("deepseek_v3", "glm4_moe")


def probabilities(logits, family, shared, kept):
    logits = logits.double().clone()
    if kept is not None:  # the plan's restriction: dropped experts get -inf before the softmax
        dropped = [e for e in range(logits.shape[1]) if e not in kept]
        logits[:, dropped] = float("-inf")
    if family in SIGMOID_FAMILIES:
        return torch.sigmoid(logits)
    if family == "emo" and shared > 0:
        routed = torch.softmax(logits[:, :-shared], dim=-1)
        return torch.cat([routed, torch.softmax(logits[:, -shared:], dim=-1)], dim=-1)
    return torch.softmax(logits, dim=-1)


def main():
    usage, usage_meta = load_file(sys.argv[1])
    reference, _ = load_file(sys.argv[2])
    config = json.load(open(sys.argv[3]))
    info = json.loads(usage_meta["moeslice_usage"])
    family, shared = info["family"], info["shared_experts"]
    plan = (info.get("keep_plan") or {}).get("experts_kept_per_layer")
    documents, layers, experts = usage["counts"].shape
    worst = 0.0
    for d in range(documents):
        for layer in range(layers):
            key = f"doc.{d}.layer.{layer}"
            if f"{key}.experts" not in reference:
                if usage["counts"][d, layer].any():
                    print(f"document {d} layer {layer}: counts in a dense layer", file=sys.stderr)
                    sys.exit(1)
                continue
            chosen = reference[f"{key}.experts"].long()
            weights = reference[f"{key}.weights"].double()
            norms = reference[f"{key}.expert_out_norm"].double()
            counts = torch.bincount(chosen.flatten(), minlength=experts)
            if not torch.equal(counts.int(), usage["counts"][d, layer]):
                print(f"document {d} layer {layer}: counts {usage['counts'][d, layer].tolist()} "
                      f"!= reference {counts.tolist()}", file=sys.stderr)
                sys.exit(1)
            kept = plan[layer] if plan else None
            mass = probabilities(reference[f"{key}.router_logits"], family, shared, kept).sum(0)
            gate_norm = torch.zeros(experts, dtype=torch.float64).index_add_(
                0, chosen.flatten(), (weights * norms).flatten())
            gate_weight = torch.zeros(experts, dtype=torch.float64).index_add_(
                0, chosen.flatten(), weights.flatten())
            for name, want in (("mass", mass), ("gate_norm", gate_norm),
                               ("gate_weight", gate_weight)):
                got = usage[name][d, layer].double()
                error = (got - want).abs().max().item() / max(want.abs().max().item(), 1e-30)
                worst = max(worst, error)
                if error > 1e-5:
                    print(f"document {d} layer {layer}: {name} relative error {error:.3g}",
                          file=sys.stderr)
                    sys.exit(1)
        tokens = reference[f"doc.{d}"].shape[0]
        if usage["tokens"][d].item() != tokens:
            print(f"document {d}: tokens {usage['tokens'][d].item()} != {tokens}", file=sys.stderr)
            sys.exit(1)
    print(f"check_usage: {documents} documents match (max relative error {worst:.2g})")


if __name__ == "__main__":
    main()
