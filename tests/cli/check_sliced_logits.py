"""A sliced checkpoint computes what the full model computes with the dropped experts' router
logits set to -inf, by the PyTorch reference and by moeslice.

Usage: check_sliced_logits.py FULL_DIR SLICED_DIR PLAN.json CORPUS.jsonl OURS_KEEP OURS_SLICED
  OURS_KEEP:   `moeslice logits --router` of FULL_DIR with --keep PLAN.json
  OURS_SLICED: `moeslice logits --router` of SLICED_DIR
Checks, in one process:
- reference(sliced) == reference(full, plan) in float64: logits to 1e-12 relative, and the chosen
  experts, mapped back to original ids, identical;
- OURS_SLICED matches reference(sliced) (compare_outputs: logits, router, weights, norms, experts);
- OURS_SLICED's logits equal OURS_KEEP's to 1e-6 relative.
Exits 1 with a message on the first mismatch.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import torch  # noqa: E402
import compare_outputs  # noqa: E402
import reference_forward  # noqa: E402
import safetensors_io  # noqa: E402


def fail(message):
    print(f"check_sliced_logits: {message}", file=sys.stderr)
    sys.exit(1)


def rel(a, b):
    a, b = a.to(torch.float64), b.to(torch.float64)
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / scale if scale > 0 else (a - b).abs().max().item()


def main():
    full_dir, sliced_dir, plan_path, corpus, ours_keep, ours_sliced = sys.argv[1:7]
    plan = json.load(open(plan_path))
    kept = plan["experts_kept_per_layer"]
    docs, _ = reference_forward.read_corpus(corpus)
    full = reference_forward.Model.load(full_dir, "float64").forward(docs, plan)
    sliced = reference_forward.Model.load(sliced_dir, "float64").forward(docs)
    worst = 0.0
    for d, (f, s) in enumerate(zip(full, sliced)):
        worst = max(worst, rel(s["logits"], f["logits"]))
        for layer, record in s["layers"].items():
            original = torch.tensor(kept[layer])[record["experts"].long()]
            if not torch.equal(original, f["layers"][layer]["experts"].long()):
                fail(f"document {d} layer {layer}: the sliced reference chooses other experts")
    if worst > 1e-12:
        fail(f"reference: sliced logits differ from the restricted full model by {worst:.3g}")

    out = os.path.join(os.path.dirname(ours_sliced), "reference_sliced.safetensors")
    safetensors_io.save_file(out, reference_forward.results_to_tensors(sliced, "float64"))
    if compare_outputs.main(["--ref", out, "--got", ours_sliced, "--label", "sliced"]) != 0:
        fail("moeslice on the sliced model differs from the reference")

    keep = safetensors_io.load_file(ours_keep)[0]
    got = safetensors_io.load_file(ours_sliced)[0]
    for d in range(len(docs)):
        diff = rel(got[f"doc.{d}"], keep[f"doc.{d}"])
        if diff > 1e-6:
            fail(f"moeslice: document {d}: sliced logits differ from --keep by {diff:.3g}")
    print(f"check_sliced_logits: {len(docs)} documents match (reference {worst:.2g})")


if __name__ == "__main__":
    main()
