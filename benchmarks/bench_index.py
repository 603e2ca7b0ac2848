"""Indexing throughput (photos/s, faces/s) of `python -m tinyconv.faces index`: 1 and 2 worker processes on this
machine, and a Dask LocalCluster of 2 single-threaded worker processes.

    python benchmarks/bench_index.py --photos ../shared/data/faces/lfw/lfw-deepfunneled --count 60

Each run indexes the same `count` photos (the first ones, sorted by path) into a new database, in its own process;
the time includes loading the network in every worker (as a user pays it).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyconv.faces.index import photo_files  # noqa: E402
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS  # noqa: E402

DASK = """
import sys
from distributed import LocalCluster
from tinyconv.faces.__main__ import main
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
    sys.exit(main(sys.argv[1:] + ["--dask", cluster.scheduler_address]))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", required=True, help="a folder of photos")
    parser.add_argument("--count", type=int, default=60, help="index the first COUNT photos (default 60)")
    parser.add_argument("--preprocess", default=DEFAULT_PREPROCESS, help=f"(default {DEFAULT_PREPROCESS})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photos = Path(folder) / "photos"
        photos.mkdir()
        for i, f in enumerate(photo_files([args.photos])[:args.count]):
            (photos / f"{i:05d}{f.suffix}").symlink_to(f.resolve())
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__))] + sys.path))
        print(f"{args.count} photos, preprocessing {args.preprocess}; load average {os.getloadavg()[0]:.1f}")
        for label, command in [("1 worker", ["-m", "tinyconv.faces"]), ("2 workers", ["-m", "tinyconv.faces"]),
                               ("Dask LocalCluster, 2 workers", ["-c", DASK])]:
            db = Path(folder) / f"{len(label)}.db"
            argv = ["index", str(photos), "--db", str(db), "--preprocess", args.preprocess]
            if label == "2 workers":
                argv += ["--workers", "2"]
            out = subprocess.run([sys.executable, *command, *argv], capture_output=True, text=True, env=env)
            if out.returncode:
                sys.exit(f"{label}: failed\n{out.stderr[-2000:]}")
            summary = out.stdout.strip().splitlines()[-1]
            photos_s, faces_s = re.search(r"([\d.]+) photos/s, ([\d.]+) faces/s", summary).groups()
            print(f"{label:<30} {photos_s:>6} photos/s {faces_s:>6} faces/s   ({summary.split(':')[0]})",
                  flush=True)


if __name__ == "__main__":
    main()
