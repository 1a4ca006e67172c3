"""Markdown tables from examples/all_domains.sh's comparison files (stdlib only).

Usage: python3 examples/summarize.py build/example/all-domains
"""
import json
import os
import sys

VARIANTS = [("full", "full"), ("mass-25", "25%"), ("mass-12.5", "12.5%"), ("random-25", "random 25%")]


def load(root):
    results = {}
    for model in sorted(os.listdir(root)):
        model_dir = os.path.join(root, model)
        if not os.path.isdir(model_dir):
            continue
        for domain in sorted(os.listdir(model_dir)):
            path = os.path.join(model_dir, domain, "compare.json")
            if os.path.isfile(path):
                with open(path) as f:
                    results[model, domain] = {v["label"]: v for v in json.load(f)["variants"]}
    return results


def metric(variant, key):
    return variant["metrics"].get(key)


def main():
    root = sys.argv[1]
    results = load(root)
    models = sorted({m for m, _ in results}, key=["emo-style", "random-pools", "standard"].index)
    domains = sorted({d for _, d in results})

    print("Perplexity on each domain's test split (change against the full model):\n")
    print("| domain | model | full | 25% | 12.5% | random 25% |")
    print("|---|---|---|---|---|---|")
    mean = {(m, v): [] for m in models for v, _ in VARIANTS}
    for domain in domains:
        for model in models:
            r = results[model, domain]
            full = metric(r["full"], "perplexity")
            cells = [f"{full:.1f}"]
            for label, _ in VARIANTS[1:]:
                ppl = metric(r[label], "perplexity")
                change = ppl / full - 1
                mean[model, label].append(change)
                cells.append(f"{ppl:.1f} ({change:+.1%})")
            print(f"| {domain} | {model} | " + " | ".join(cells) + " |")
    print("| **mean change** | | | | | |")
    for model in models:
        cells = [f"{sum(mean[model, l]) / len(mean[model, l]):+.1%}" for l, _ in VARIANTS[1:]]
        print(f"| | {model} | | " + " | ".join(cells) + " |")

    print("\nNext-token accuracy and multiple-choice accuracy (acc, 4 choices; 100 tasks per domain):\n")
    print("| domain | model | top-1 full / 25% / 12.5% / random 25% | MC acc full / 25% / 12.5% / random 25% |")
    print("|---|---|---|---|")
    mc_mean = {(m, v): [] for m in models for v, _ in VARIANTS}
    for domain in domains:
        for model in models:
            r = results[model, domain]
            top1 = " / ".join(f"{metric(r[l], 'top1_accuracy'):.3f}" for l, _ in VARIANTS)
            accs = [metric(r[l], "acc") for l, _ in VARIANTS]
            for (l, _), a in zip(VARIANTS, accs):
                mc_mean[model, l].append(a)
            print(f"| {domain} | {model} | {top1} | " + " / ".join(f"{a:.2f}" for a in accs) + " |")
    print("| **mean** | | | |")
    for model in models:
        cells = " / ".join(f"{sum(mc_mean[model, l]) / len(mc_mean[model, l]):.3f}" for l, _ in VARIANTS)
        print(f"| | {model} | | {cells} |")


if __name__ == "__main__":
    main()
