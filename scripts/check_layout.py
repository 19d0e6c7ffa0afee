#!/usr/bin/env python3
"""Checks that the library's folders read as floors: every #include <loglinear/...> in
reference/loglinear/ points to the file's own folder or to a floor below it, never up or sideways.

Floors, bottom-up (docs/reading-the-code.md):
  0 core/                                   views, inputs, checks, Fenwick levels, Param, activations
  1 attention/ lambda/ decay/ tasks/        the operator, its two parameterisations, the data
  2 nn/ context_parallel/                  layers and both models; one sequence split over ranks
  3 train/                                  optimiser, checkpoint, diagnostics, the loop
Usage: check_layout.py [repo root]; prints one line per violation and exits 1 if there is any.
"""
import pathlib
import re
import sys

FLOORS = {"core": 0, "attention": 1, "lambda": 1, "decay": 1, "tasks": 1, "nn": 2, "context_parallel": 2,
          "train": 3}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]loglinear/(\w+)/')


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".") / "reference" / "loglinear"
    bad = []
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    for name in folders:
        if name not in FLOORS:
            bad.append(f"{name}/: a folder with no floor; add it to FLOORS and docs/reading-the-code.md")
    for path in sorted(root.rglob("*.[ch]pp")):
        own = path.relative_to(root).parts[0]
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if not m or m.group(1) == own:
                continue
            target = m.group(1)
            if target not in FLOORS or FLOORS[target] >= FLOORS.get(own, -1):
                bad.append(f"{path.relative_to(root.parent.parent)}:{number}: {own}/ (floor {FLOORS.get(own)}) "
                           f"includes {target}/ (floor {FLOORS.get(target)})")
    for line in bad:
        print(line)
    print(f"check_layout: {len(bad)} violation(s) in {root}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
