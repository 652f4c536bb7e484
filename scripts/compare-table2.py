#!/usr/bin/env python3
"""Compare two `certquant bench robustness` JSONL files task by task.

A task is keyed by (id, eps_text). For every task present in the reference, the candidate must
have the same status, the same χ values (bit-identical floats, as written by serde's shortest
round-trip formatting), the same χ sources and the same bit-widths ⟨Q, F⟩ per layer. Timings are
ignored. Prints one line per difference and a summary; exits 1 if anything differs or a
reference task is missing, 0 otherwise. Standard library only.

    scripts/compare-table2.py REFERENCE.jsonl CANDIDATE.jsonl [--label NAME]
"""

import argparse
import json
import sys

FIELDS = ("status", "chi", "chi_source", "layers")


def load(path):
    tasks = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            key = (rec["id"], rec["eps_text"])
            if key in tasks:
                sys.exit(f"{path}:{n}: task {key} appears twice")
            tasks[key] = rec
    return tasks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("candidate")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    ref, cand = load(a.reference), load(a.candidate)
    diffs, missing = [], []
    for key in sorted(ref):
        if key not in cand:
            missing.append(key)
            continue
        for field in FIELDS:
            r, c = ref[key].get(field), cand[key].get(field)
            if r != c:
                diffs.append(f"id {key[0]} eps {key[1]}: {field} {r!r} -> {c!r}")
    label = f"{a.label}: " if a.label else ""
    for d in diffs:
        print(f"{label}DIFF {d}")
    for key in missing:
        print(f"{label}MISSING id {key[0]} eps {key[1]}")
    same = len(ref) - len(missing) - len({d.split(':')[0] for d in diffs})
    print(
        f"{label}{len(ref)} reference tasks, {len(cand)} candidate tasks: "
        f"{same} identical in {', '.join(FIELDS)}; {len(diffs)} field differences; "
        f"{len(missing)} missing"
    )
    return 1 if diffs or missing else 0


if __name__ == "__main__":
    sys.exit(main())
