#!/usr/bin/python3
"""Compare a `moeslice logits --router` output with reference_forward.py's output.

  /usr/bin/python3 tests/reference/compare_outputs.py --ref REF.safetensors --got GOT.safetensors
      [--tol 1e-5] [--label NAME] [--windows]
Library use (one torch import for many cases): compare_outputs.main([...argv...]) -> exit code.

Per document: logits max|diff| / max|ref| <= tol. Per MoE layer: chosen experts identical per
token and in the same order (an order difference is accepted only between slots whose reference
weights tie to 1e-6); router logits, gate weights and expert output norms within tol (relative to
the largest reference magnitude of that tensor). --windows: the reference corpus holds each
windowed document of GOT as consecutive documents (one per window, as listed in GOT's `windows`
metadata), which are concatenated before comparing. Prints one summary line; on failure, the
first mismatches. Exit 0 = match, 1 = mismatch, 2 = unreadable input.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def rel_diff(got, ref):
    got = got.to(torch.float64)
    ref = ref.to(torch.float64)
    if got.shape != ref.shape:
        return float("inf")
    scale = ref.abs().max().item() if ref.numel() else 0.0
    diff = (got - ref).abs().max().item() if ref.numel() else 0.0
    return diff / scale if scale > 0 else diff


def doc_indices(tensors):
    return sorted(int(n.split(".")[1]) for n in tensors if n.count(".") == 1 and n.startswith("doc."))


def layer_names(tensors, doc):
    prefix = f"doc.{doc}.layer."
    return sorted({int(n[len(prefix):].split(".")[0]) for n in tensors if n.startswith(prefix)})


def reference_documents(ref, got_meta, got_docs, windows):
    """got doc index -> list of reference doc indices whose rows make it up."""
    ref_docs = doc_indices(ref)
    if not windows:
        return {d: [d] for d in got_docs}, ref_docs
    split = json.loads(got_meta.get("windows", "{}") or "{}")
    mapping, next_ref = {}, 0
    for d in got_docs:
        count = len(split.get(str(d), [None]))
        mapping[d] = list(range(next_ref, next_ref + count))
        next_ref += count
    return mapping, ref_docs[:next_ref]


def concat(ref, names):
    return torch.cat([ref[n] for n in names], dim=0)


def compare_experts(got_ids, ref_ids, ref_w, where, problems):
    flips = 0
    if got_ids.shape != ref_ids.shape:
        problems.append(f"{where}: experts shape {list(got_ids.shape)} vs reference {list(ref_ids.shape)}")
        return 1
    for t in range(ref_ids.shape[0]):
        g, r = got_ids[t].tolist(), ref_ids[t].tolist()
        if g == r:
            continue
        w = ref_w[t].tolist()
        tie_ok = sorted(g) == sorted(r) and all(
            g[s] == r[s] or any(r[j] == g[s] and abs(w[j] - w[s]) <= 1e-6 for j in range(len(r)))
            for s in range(len(r)))
        if not tie_ok:
            flips += 1
            if len(problems) < 12:
                problems.append(f"{where} token {t}: experts {g} vs reference {r} (ref weights "
                                f"{[round(x, 6) for x in w]})")
    return flips


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True)
    ap.add_argument("--got", required=True)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--label", default="")
    ap.add_argument("--windows", action="store_true")
    a = ap.parse_args(argv)
    try:
        ref, _ = safetensors_io.load_file(a.ref)
        got, got_meta = safetensors_io.load_file(a.got)
    except (OSError, safetensors_io.SafetensorsError) as e:
        print(f"compare_outputs: {e}", file=sys.stderr)
        return 2

    problems = []
    got_docs = doc_indices(got)
    mapping, used_ref = reference_documents(ref, got_meta, got_docs, a.windows)
    if len(used_ref) != len(doc_indices(ref)) or any(len(v) == 0 for v in mapping.values()):
        problems.append(f"document count: got {len(got_docs)} ({sum(len(v) for v in mapping.values())} "
                        f"windows), reference {len(doc_indices(ref))}")
    worst = {"logits": 0.0, "router_logits": 0.0, "weights": 0.0, "expert_out_norm": 0.0}
    tokens = flips = 0
    for d in got_docs:
        rd = mapping.get(d, [])
        if not rd or any(f"doc.{r}" not in ref for r in rd):
            problems.append(f"doc.{d}: no matching reference document")
            continue
        ref_logits = concat(ref, [f"doc.{r}" for r in rd])
        diff = rel_diff(got[f"doc.{d}"], ref_logits)
        worst["logits"] = max(worst["logits"], diff)
        tokens += ref_logits.shape[0]
        if diff > a.tol:
            problems.append(f"doc.{d}: logits max|diff|/max|ref| = {diff:.3g} > {a.tol:g}")
        got_layers, ref_layers = layer_names(got, d), layer_names(ref, rd[0])
        if got_layers != ref_layers:
            problems.append(f"doc.{d}: MoE layers {got_layers} vs reference {ref_layers}")
            continue
        for l in ref_layers:
            where = f"doc.{d} layer {l}"

            def r(kind):
                return concat(ref, [f"doc.{x}.layer.{l}.{kind}" for x in rd])

            ref_ids, ref_w = r("experts"), r("weights")
            got_ids = got[f"doc.{d}.layer.{l}.experts"]
            flips += compare_experts(got_ids, ref_ids, ref_w, where, problems)
            for kind in ("router_logits", "weights", "expert_out_norm"):
                name = f"doc.{d}.layer.{l}.{kind}"
                if name not in got:
                    problems.append(f"{where}: missing {kind}")
                    continue
                ref_t, got_t = r(kind), got[name]
                if kind != "router_logits" and not torch.equal(got_ids, ref_ids):
                    # Compare slot-aligned values only where the choices agree.
                    same = (got_ids == ref_ids) if got_ids.shape == ref_ids.shape else None
                    if same is None:
                        continue
                    ref_t, got_t = ref_t[same], got_t[same]
                diff = rel_diff(got_t, ref_t)
                worst[kind] = max(worst[kind], diff)
                if diff > a.tol:
                    problems.append(f"{where}: {kind} max|diff|/max|ref| = {diff:.3g} > {a.tol:g}")
    status = "OK" if not problems else "FAIL"
    print(f"{status} {a.label}: {len(got_docs)} docs, {tokens} tokens; max rel diff logits "
          f"{worst['logits']:.2e}, router logits {worst['router_logits']:.2e}, weights "
          f"{worst['weights']:.2e}, expert norms {worst['expert_out_norm']:.2e}; routing flips "
          f"{flips}")
    for p in problems[:12]:
        print(f"  {p}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
