"""Run a benchmark's two sides, tinyconv and PyTorch, each in its own process, and keep the best of each.

In one process PyTorch's OpenMP threads keep spinning after each op and steal the 2 cores from NumPy's and Numba's
threads (and the other way round); a user runs one library or the other. So a benchmark script runs itself as a
child with `--side ours` or `--side torch`, alternating, ROUNDS times; each child prints one line
`RESULT {"case": [median, best], ...}` (keys starting with "_" carry other values) and `compare` keeps, per case,
the best median and the best time of each side. The tinyconv child gets tinyconv's thread settings (OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT=1, as
`import tinyconv` sets them); the PyTorch child runs with the environment as given.

Run benchmarks with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` (see /work/shared/specs/performance.md): these
machines pin NumPy's BLAS to older kernels that a user's machine would not use. `describe()` says which ran.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROUNDS = 3
TINYCONV_THREADS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "1"}


def timed(fn, repeats, warmup=2):
    """[median, best] wall time of fn() in seconds after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return [statistics.median(times), min(times)]


def emit(results):
    """Child side: hand {case: [median, best], ...} (and any other JSON values) to the parent."""
    print("RESULT " + json.dumps(results), flush=True)


def has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def describe():
    """One line: load, CPU count, the BLAS libraries and kernels this process loaded, and the pinning variables."""
    import numpy  # noqa: F401  (loads its BLAS)
    from threadpoolctl import threadpool_info
    blas = "; ".join(f"{i['internal_api']} {i['version']} {i.get('architecture', '?')} kernels, {i['num_threads']} "
                     f"threads" for i in threadpool_info() if i["user_api"] == "blas")
    pins = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    pinned = f"PINNED {pins} (run with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)" if pins else "no BLAS pin"
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; NumPy BLAS: {blas}; {pinned}"


def parse(parser, run_ours, run_torch):
    """The command line of a benchmark script: as a child (`--side S`), run that side, print its RESULT line and
    return None; as the parent, print `describe()` and return the parsed arguments."""
    parser.add_argument("--side", choices=["ours", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        emit(run_ours(args) if args.side == "ours" else run_torch(args))
        return None
    print(describe())
    return args


def compare(script, argv, rounds=ROUNDS):
    """{side: {case: [best median, best time]}} over `rounds` alternating child runs of `script argv --side S`
    (side 'torch' only when PyTorch is importable)."""
    sides = ["ours", "torch"] if has_torch() else ["ours"]
    best = {side: {} for side in sides}
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            env = {**os.environ, **(TINYCONV_THREADS if side == "ours" else {})}
            out = subprocess.run([sys.executable, str(script), *argv, "--side", side], env=env, check=True,
                                 capture_output=True, text=True).stdout
            result = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
            for case, value in result.items():
                if not case.startswith("_") and case in best[side]:      # "_name": a value, not a timing
                    old = best[side][case]
                    value = [min(old[0], value[0]), min(old[1], value[1])]
                best[side][case] = value
    return best
