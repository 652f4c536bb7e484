#!/usr/bin/env python3
"""Runs a `certquant export onnx` model in ONNX Runtime on the images of an IDX3 file.

    python3 ort_run.py MODEL.onnx IMAGES[.gz] OUT.txt

writes one line per image: the integer logits (int64), space-separated. Needs numpy and
onnxruntime (`python3 -m pip install numpy onnxruntime`). Used by compare.py and by
tests/export_int.rs.
"""
import gzip
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:  # the optional Python extra
    sys.stderr.write(f"error: {e}; install it with: python3 -m pip install numpy onnxruntime\n")
    sys.exit(2)


def die(msg):
    """Prints `msg` on stderr and exits with code 2 (bad input or a failed step)."""
    sys.stderr.write(msg.rstrip() + "\n")
    sys.exit(2)


def read_idx_images(path):
    """The u8 images of an IDX3 file (gzipped or not) as an [N, rows*cols] array."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 16 or int.from_bytes(data[0:4], "big") != 0x803:
        die(f"{path}: not an IDX3 u8 image file")
    n, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    pixels = np.frombuffer(data, dtype=np.uint8, count=n * rows * cols, offset=16)
    return pixels.reshape(n, rows * cols)


def run_model(model, images, batch=500):
    """The int64 logits of `images` ([N, inputs] uint8), in batches."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    outs = [
        sess.run(["logits"], {"pixels": images[i : i + batch]})[0]
        for i in range(0, len(images), batch)
    ]
    out = np.concatenate(outs, axis=0)
    if out.dtype != np.int64:
        die(f"{model}: logits of type {out.dtype}, expected int64")
    return out


def main():
    if len(sys.argv) != 4:
        die(__doc__)
    logits = run_model(sys.argv[1], read_idx_images(sys.argv[2]))
    with open(sys.argv[3], "w") as f:
        for row in logits:
            f.write(" ".join(str(int(v)) for v in row) + "\n")


if __name__ == "__main__":
    main()
