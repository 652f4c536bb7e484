#!/usr/bin/env python3
"""Preimage seconds per task of `certquant bench robustness` runs against a reference run and
the paper's PTime (issue 18): one row per network.

For each NAME=RUN.jsonl[:REF.jsonl] argument, prints the tasks, the mean and median preimage
seconds of RUN, the same for REF on the same tasks (if given), the paper's PTime for NAME
(strict rows of the paper's Table 2), the ratios, and, where REF is given, how the χ values
compare task by task: the largest relative difference over layers where both runs say
`optimal`, and how many layers RUN has a χ above REF's by more than 1e-9 relative (the fast
engine's χ must never exceed an exact optimum). Standard library only.

    scripts/issue18/preimage-table.py MP1=new/mp1.jsonl:ref/mp1.jsonl MP2=new/mp2.jsonl ...
"""

import json
import statistics
import sys

PAPER_PTIME = {"MP1": 8.17, "MP2": 30.49, "MP3": 39.55, "FP1": 6.93, "FP2": 29.82, "FP3": 36.90}


def load(path):
    tasks = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                if "preimage_seconds" in rec:
                    tasks[(rec["id"], rec["eps_text"])] = rec
    return tasks


def stats(xs):
    return (statistics.fmean(xs), statistics.median(xs)) if xs else (float("nan"),) * 2


def main(args):
    if not args:
        sys.exit(__doc__)
    print("| net | tasks | mean s | median s | ref mean s | ref median s | ref / new (means) "
          "| paper PTime | paper / new | χ layers compared | max rel. χ diff | new above ref |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for arg in args:
        name, _, files = arg.partition("=")
        run_path, _, ref_path = files.partition(":")
        run = load(run_path)
        ref = load(ref_path) if ref_path else {}
        keys = sorted(k for k in run if not ref or k in ref)
        mean, med = stats([run[k]["preimage_seconds"] for k in keys])
        row = [name, str(len(keys)), f"{mean:.2f}", f"{med:.2f}"]
        compared, worst, above = 0, 0.0, 0
        if ref:
            rmean, rmed = stats([ref[k]["preimage_seconds"] for k in keys])
            row += [f"{rmean:.2f}", f"{rmed:.2f}", f"{rmean / mean:.1f}"]
            for k in keys:
                a, b = run[k], ref[k]
                for ca, cb, sa, sb in zip(a["chi"], b["chi"], a["chi_source"], b["chi_source"]):
                    if sa == sb == "optimal":
                        compared += 1
                        rel = abs(ca - cb) / max(1.0, abs(cb))
                        worst = max(worst, rel)
                        if ca > cb + 1e-9 * max(1.0, abs(cb)):
                            above += 1
        else:
            row += ["—", "—", "—"]
        paper = PAPER_PTIME.get(name)
        row += [f"{paper:.2f}" if paper else "—", f"{paper / mean:.1f}" if paper else "—"]
        row += [str(compared), f"{worst:.1e}" if ref else "—", str(above) if ref else "—"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
