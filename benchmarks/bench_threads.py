"""Why tinyconv sets OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=1 at import (tinyconv/__init__.py).

After each call, OpenBLAS's worker threads (and OpenMP's, which Numba's parallel pooling uses) keep spinning for a
while; on 2 cores they then steal the CPU from the next kernel. This times one small training-like sequence
(conv -> relu -> max pool -> conv -> backward, 112x112x64, batch 1) in a fresh process per setting, since the
variables only act before NumPy is imported. An empty value means the library's own default.

    python benchmarks/bench_threads.py
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "neither (library defaults)": {"OMP_WAIT_POLICY": "", "OPENBLAS_THREAD_TIMEOUT": ""},
    "OMP_WAIT_POLICY=PASSIVE only": {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": ""},
    "OPENBLAS_THREAD_TIMEOUT=1 only": {"OMP_WAIT_POLICY": "", "OPENBLAS_THREAD_TIMEOUT": "1"},
    "both (tinyconv's default)": {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "1"},
}
CHILD = """
import time, numpy as np, tinyconv, tinyconv.functional as F
rng = np.random.default_rng(0)
x = tinyconv.Tensor(rng.standard_normal((1, 112, 112, 64)).astype(np.float32), requires_grad=True)
w1, w2 = (tinyconv.Tensor(rng.standard_normal((3, 3, 64, 64)).astype(np.float32) * 0.05) for _ in range(2))
def step():
    z = F.conv2d(F.max_pool2d(F.relu(F.conv2d(x, w1, padding=1)), 2), w2, padding=1)
    z.sum().backward()
times = []
for i in range(20):
    start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
print(1000 * min(times[3:]), 1000 * sorted(times[3:])[len(times[3:]) // 2])
"""


def main():
    print(f"{'setting':32} {'best ms':>8} {'median ms':>10}")
    for name, env in SETTINGS.items():
        out = subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, **env}, cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
        print(f"{name:32} {float(out[0]):8.1f} {float(out[1]):10.1f}")


if __name__ == "__main__":
    main()
