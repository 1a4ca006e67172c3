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


def print_table(results, models, domains, columns, mean_label, row_cells, mean_cells):
    """A Markdown table: one row per domain and model (row_cells of its variants), then one mean
    row per model (mean_cells of its variants in every domain)."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for domain in domains:
        for model in models:
            print(f"| {domain} | {model} | " + " | ".join(row_cells(results[model, domain])) + " |")
    print(f"| {mean_label} |" + " |" * (len(columns) - 1))
    for model in models:
        per_domain = [results[model, d] for d in domains]
        print(f"| | {model} | | " + " | ".join(mean_cells(per_domain)) + " |")


def mean(values):
    return sum(values) / len(values)


def perplexity_cells(r):
    full = metric(r["full"], "perplexity")
    cells = [f"{full:.1f}"]
    for label, _ in VARIANTS[1:]:
        ppl = metric(r[label], "perplexity")
        cells.append(f"{ppl:.1f} ({ppl / full - 1:+.1%})")
    return cells


def mean_perplexity_change(per_domain):
    return [
        f"{mean([metric(r[l], 'perplexity') / metric(r['full'], 'perplexity') - 1 for r in per_domain]):+.1%}"
        for l, _ in VARIANTS[1:]
    ]


def accuracy_cells(r):
    top1 = " / ".join(f"{metric(r[l], 'top1_accuracy'):.3f}" for l, _ in VARIANTS)
    return [top1, " / ".join(f"{metric(r[l], 'acc'):.2f}" for l, _ in VARIANTS)]


def mean_mc_accuracy(per_domain):
    return [" / ".join(f"{mean([metric(r[l], 'acc') for r in per_domain]):.3f}" for l, _ in VARIANTS)]


def main():
    results = load(sys.argv[1])
    models = sorted({m for m, _ in results}, key=["emo-style", "random-pools", "standard"].index)
    domains = sorted({d for _, d in results})
    names = [name for _, name in VARIANTS]

    print("Perplexity on each domain's test split (change against the full model):\n")
    print_table(results, models, domains, ["domain", "model"] + names, "**mean change**",
                perplexity_cells, mean_perplexity_change)
    print("\nNext-token accuracy and multiple-choice accuracy (acc, 4 choices; 100 tasks per domain):\n")
    print_table(results, models, domains,
                ["domain", "model", "top-1 " + " / ".join(names), "MC acc " + " / ".join(names)],
                "**mean**", accuracy_cells, mean_mc_accuracy)


if __name__ == "__main__":
    main()
