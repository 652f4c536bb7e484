#!/usr/bin/env python3
"""Issue 17 acceptance: certquant's integer evaluation, ONNX Runtime on the exported integer
model and the exported C compiled with `cc -O2` give identical integer logits on a data set.

    python3 scripts/issue17/compare.py --qnn OUT/qnn.onnx --certificate OUT/certificate.json \\
        --data ../shared/data/mnist [--limit N] [--work DIR] [--certquant target/release/certquant]

or, without a certificate (an UNCERTIFIED export, formats given by hand):

    python3 scripts/issue17/compare.py --qnn Q.onnx --weights 6,6,5 --acts 9.8,8.5,8.5 \\
        [--acc-bits 32] --data DIR

`--data` is an IDX directory (t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz]).
Steps: `certquant export logits` (the reference, IntProgram), `certquant export c` compiled
with `cc -O2 -std=c99` together with scripts/issue17/driver.c, `certquant export onnx` run in
ONNX Runtime (scripts/issue17/ort_run.py). Prints N, the mismatches of each export against
the reference and the accuracy of each (a tie counts as wrong); exit 0 when all agree on every
image, 1 on any mismatch, 2 on an error.

Needs python3 with numpy and onnxruntime (the optional Python extra:
`python3 -m pip install numpy onnxruntime`) and a C compiler `cc`.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError as e:  # the optional Python extra
    sys.stderr.write(f"error: {e}; install it with: python3 -m pip install numpy onnxruntime\n")
    sys.exit(2)


def die(msg):
    """Prints `msg` on stderr and exits with code 2 (bad input or a failed step)."""
    sys.stderr.write(msg.rstrip() + "\n")
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ort_run  # noqa: E402


def find_idx(data, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(data, name)
        if os.path.isfile(p):
            return p
    die(f"error: {data}: no {stem}[.gz]")


def read_bytes(path):
    with open(path, "rb") as f:
        b = f.read()
    return gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b


def read_labels(path):
    b = read_bytes(path)
    if int.from_bytes(b[0:4], "big") != 0x801:
        die(f"error: {path}: not an IDX1 label file")
    n = int.from_bytes(b[4:8], "big")
    return np.frombuffer(b, dtype=np.uint8, count=n, offset=8).astype(np.int64)


def strict_argmax(logits):
    """Class per row, -1 where the largest logit is not unique."""
    best = logits.argmax(axis=1)
    top = logits.max(axis=1, keepdims=True)
    ties = (logits == top).sum(axis=1) > 1
    return np.where(ties, -1, best)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        die(f"error: {' '.join(map(str, cmd))} exited {r.returncode}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qnn", required=True)
    ap.add_argument("--certificate")
    ap.add_argument("--weights")
    ap.add_argument("--acts")
    ap.add_argument("--acc-bits")
    ap.add_argument("--data", required=True, help="IDX directory")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--work", help="directory for the exports (default: a temporary one)")
    ap.add_argument(
        "--certquant",
        default=os.path.join(HERE, "..", "..", "target", "release", "certquant"),
    )
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    a = ap.parse_args()
    if a.certificate:
        src = ["--qnn", a.qnn, "--certificate", a.certificate]
    elif a.weights and a.acts:
        src = ["--qnn", a.qnn, "--weights", a.weights, "--acts", a.acts]
        if a.acc_bits:
            src += ["--acc-bits", a.acc_bits]
    else:
        die("error: give --certificate, or --weights and --acts")
    work = a.work or tempfile.mkdtemp(prefix="certquant-issue17-")
    os.makedirs(work, exist_ok=True)
    cq = a.certquant

    images = ort_run.read_idx_images(find_idx(a.data, "t10k-images-idx3-ubyte"))
    labels = read_labels(find_idx(a.data, "t10k-labels-idx1-ubyte"))
    n = len(images) if a.limit is None else min(a.limit, len(images))
    images, labels = images[:n], labels[:n]
    raw = os.path.join(work, "images.idx3")
    with open(raw, "wb") as f:
        for v in (0x803, n, 1, images.shape[1]):
            f.write(v.to_bytes(4, "big"))
        f.write(images.tobytes())

    times = {}
    t = time.time()
    ref_path = os.path.join(work, "reference.npy")
    run([cq, "export", "logits", *src, "--data", a.data, "--out", ref_path, "--limit", str(n)])
    ref = np.load(ref_path)
    times["certquant"] = time.time() - t

    t = time.time()
    cdir = os.path.join(work, "c")
    run([cq, "export", "c", *src, "--out", cdir, "--name", "qnn"])
    exe = os.path.join(cdir, "run")
    run([a.cc, "-O2", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-I", cdir,
         "-DCQ_NAME=qnn", "-DCQ_UPPER=QNN", os.path.join(HERE, "driver.c"),
         os.path.join(cdir, "qnn.c"), "-o", exe])
    lines = run([exe, raw]).splitlines()
    c_rows = np.array([[int(t) for t in l.split()] for l in lines], dtype=np.int64)
    c_class, c_logits = c_rows[:, 0], c_rows[:, 1:]
    times["c"] = time.time() - t

    t = time.time()
    model = os.path.join(work, "qnn_int.onnx")
    run([cq, "export", "onnx", *src, "--out", model])
    o_logits = ort_run.run_model(model, images)
    times["onnxruntime"] = time.time() - t

    def mismatches(x):
        if x.shape != ref.shape:
            return n
        return int((x != ref).any(axis=1).sum())

    ref_class = strict_argmax(ref)
    summary = {
        "n": n,
        "classes": int(ref.shape[1]),
        "mismatches": {
            "c": mismatches(c_logits),
            "c_class": int((c_class != ref_class).sum()),
            "onnxruntime": mismatches(o_logits),
        },
        "accuracy": {
            "certquant": float((ref_class == labels).mean()),
            "c": float((c_class == labels).mean()),
            "onnxruntime": float((strict_argmax(o_logits) == labels).mean()),
        },
        "ties": int((ref_class == -1).sum()),
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "work": work,
    }
    ok = all(v == 0 for v in summary["mismatches"].values())
    if a.json:
        print(json.dumps(summary))
    else:
        print(f"{n} images, {summary['classes']} classes ({work})")
        for k in ("certquant", "c", "onnxruntime"):
            mm = "reference" if k == "certquant" else f"{summary['mismatches'][k]} mismatching logit rows"
            print(f"  {k:12s} accuracy {summary['accuracy'][k]:.4f}  {mm}  ({times[k]:.1f} s)")
        print(f"  ties (no class): {summary['ties']}")
        print("IDENTICAL integer logits on all images" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
