#!/usr/bin/env python3
"""Checks moeslice's layering (docs/architecture.md, "Layers"): a file in lib/<layer>/ includes
only headers of its own layer or of layers below it, and each library links to exactly the
moeslice libraries whose headers its files include. Prints every violation and exits 1 if any.

Run from anywhere: scripts/check_layers.py [source dir]. .ci/run and ctest (check_layers) run it.
"""
import pathlib
import re
import sys

# Lowest first. A layer may include its own headers and those of every layer before it.
LAYERS = ["common", "format", "model", "text", "kernels", "forward", "profile", "rank", "slice",
          "eval", "report"]
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
LINK = re.compile(r"target_link_libraries\(\s*moeslice_(\w+)([^)]*)\)", re.DOTALL)


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    lib = root / "lib"
    problems = []
    included = {layer: set() for layer in LAYERS}
    for layer in LAYERS:
        folder = lib / layer
        if not folder.is_dir():
            problems.append(f"lib/{layer}: missing (listed in scripts/check_layers.py)")
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".h", ".cpp"):
                continue
            text = path.read_text(encoding="utf-8")
            for match in INCLUDE.finditer(text):
                target = match.group(1)
                head = target.split("/", 1)[0]
                if "/" not in target or head not in RANK:
                    continue  # a header beside the file, or a system/third-party header
                line = text.count("\n", 0, match.start()) + 1
                where = f"{path.relative_to(root)}:{line}"
                if RANK[head] > RANK[layer]:
                    problems.append(f'{where}: includes "{target}", but {head} is above {layer} '
                                    f"(order: {' < '.join(LAYERS)})")
                elif head != layer:
                    included[layer].add(head)
    for layer in LAYERS:
        cmake = lib / layer / "CMakeLists.txt"
        if not cmake.exists():
            continue
        linked = set()
        for match in LINK.finditer(cmake.read_text(encoding="utf-8")):
            if match.group(1) != layer:
                continue
            linked |= set(re.findall(r"\bmoeslice_(\w+)", match.group(2))) - {"options"}
        for extra in sorted(linked - included[layer]):
            problems.append(f"lib/{layer}/CMakeLists.txt: links moeslice_{extra}, but no file of "
                            f"lib/{layer} includes a {extra}/ header")
        for missing in sorted(included[layer] - linked):
            problems.append(f"lib/{layer}/CMakeLists.txt: files include {missing}/ headers, but "
                            f"the library does not link moeslice_{missing}")
        for other in sorted(linked):
            if other in RANK and RANK[other] > RANK[layer]:
                problems.append(f"lib/{layer}/CMakeLists.txt: links moeslice_{other}, a layer above")
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_layers: {len(problems)} violation(s)")
        return 1
    print(f"check_layers: {len(LAYERS)} layers, includes and links follow the order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
