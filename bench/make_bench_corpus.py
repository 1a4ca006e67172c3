"""The benchmarks' corpus: DOCS documents of LENGTH random token ids below VOCAB (seed 7), as
JSON Lines {"id": "docN", "input_ids": [...]}, written to OUT once (an existing OUT is kept).
Used by run_forward_bench.sh, run_quant_bench.sh, run_command_bench.sh and run_deepseek_bench.sh.
Not a test.
  /usr/bin/python3 bench/make_bench_corpus.py OUT DOCS LENGTH VOCAB
"""
import json
import os
import random
import sys


def main():
    out, docs, length, vocab = sys.argv[1], *map(int, sys.argv[2:5])
    if os.path.exists(out):
        return
    random.seed(7)
    with open(out, "w") as f:
        for d in range(docs):
            f.write(json.dumps({"id": f"doc{d}", "input_ids": [random.randrange(vocab) for _ in range(length)]}) + "\n")


if __name__ == "__main__":
    main()
