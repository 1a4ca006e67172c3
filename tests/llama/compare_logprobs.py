#!/usr/bin/python3
"""Compares llama.cpp's next-token log-probabilities (next_token.mjs output) with moeslice's logits.

  /usr/bin/python3 tests/llama/compare_logprobs.py --llama LOGPROBS.json --moeslice LOGITS.safetensors
      (--tolerance T | --max-kl K) --label NAME

moeslice's logits (`doc.<i>`, [T, vocab]) are turned into log-probabilities in float64. Two
measures, over every document and position (natural log):
- max |dlogp|: the largest |difference| of log-probabilities over every token. With --tolerance T,
  exit 1 when it exceeds T, or when a top-1 choice differs where moeslice's first two tokens are
  more than 2 T apart (not a near tie). For weights both sides hold exactly (F32, F16).
- mean KL(moeslice || llama.cpp). With --max-kl K, exit 1 when it exceeds K. For quantized
  weights, where llama.cpp also quantizes the activations of its dot products (to Q8_0 or Q8_K),
  which moves every logit a little and can flip a routing choice.
Shapes that differ always fail. One "ok"/"FAIL" line per call.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from safetensors_io import load_file  # noqa: E402


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def measure(llama_file, moeslice_file):
    """(max |dlogp|, top-1 disagreements as (doc, position, ours, theirs, our gap), per-position
    KL list) or raises ValueError."""
    llama = json.load(open(llama_file))
    tensors, _ = load_file(moeslice_file)
    worst, flips, kl = 0.0, [], []
    for i, doc in enumerate(llama["docs"]):
        ours = tensors.get(f"doc.{i}")
        if ours is None:
            raise ValueError(f"{moeslice_file} has no doc.{i}")
        ours = log_softmax(ours.double().numpy())
        theirs = np.array(doc["logprobs"], dtype=np.float64)
        if ours.shape != theirs.shape:
            raise ValueError(f"doc {doc['id']}: llama.cpp {theirs.shape} against moeslice {ours.shape}")
        worst = max(worst, float(np.abs(ours - theirs).max()))
        kl.extend((np.exp(ours) * (ours - theirs)).sum(axis=-1).tolist())
        for t in range(ours.shape[0]):
            a, b = int(ours[t].argmax()), int(theirs[t].argmax())
            if a != b:
                top2 = np.sort(ours[t])[-2:]
                flips.append((doc["id"], t, a, b, float(top2[1] - top2[0])))
    return worst, flips, kl


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama", required=True)
    ap.add_argument("--moeslice", required=True)
    bound = ap.add_mutually_exclusive_group(required=True)
    bound.add_argument("--tolerance", type=float, help="largest allowed max |dlogp|")
    bound.add_argument("--max-kl", type=float, help="largest allowed mean KL")
    ap.add_argument("--label", required=True)
    args = ap.parse_args(argv)
    try:
        worst, flips, kl = measure(args.llama, args.moeslice)
    except (ValueError, OSError) as e:
        print(f"FAIL {args.label}: {e}")
        return 1
    mean_kl = float(np.mean(kl))
    if args.tolerance is not None:
        real_flips = [f for f in flips if f[4] > 2 * args.tolerance]
        ok = worst <= args.tolerance and not real_flips
        bound = f"max |dlogp| {worst:.3g} (tolerance {args.tolerance:g}), mean KL {mean_kl:.3g}"
    else:
        real_flips = []
        ok = mean_kl <= args.max_kl
        bound = f"mean KL {mean_kl:.3g} (tolerance {args.max_kl:g}), max |dlogp| {worst:.3g}"
    print(f"{'ok' if ok else 'FAIL'} {args.label}: {bound} over {len(kl)} positions, "
          f"top-1 agrees at {len(kl) - len(flips)} ({100 * (len(kl) - len(flips)) / len(kl):.1f}%)")
    for doc_id, t, a, b, gap in real_flips[:5]:
        print(f"  doc {doc_id} position {t}: moeslice top-1 {a}, llama.cpp {b} (moeslice gap {gap:.3g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
