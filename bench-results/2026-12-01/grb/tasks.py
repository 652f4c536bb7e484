# Issue 19 cross-check (bench-results/2026-12-01/grb, see BENCHMARKS.md section tag grb). Optional, not part of
# the tests: needs `pip install gurobipy scipy numpy` (Gurobi's size-limited pip licence). Run from this folder.
import numpy as np, gzip, json
from onnxw import load
def images(ds):
    b=gzip.open(f"/work/shared/data/{ds}/t10k-images-idx3-ubyte.gz").read()
    return np.frombuffer(b[16:],dtype=np.uint8).reshape(-1,784).astype(np.float64)
