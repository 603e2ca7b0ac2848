"""Indexing throughput (photos/s, faces/s) of `python -m tinyconv.faces index`: 1 and 2 worker processes on this
machine, and a Dask LocalCluster of 2 single-threaded worker processes.

    python benchmarks/bench_index.py --photos ../shared/data/faces/lfw/lfw-deepfunneled --count 300 --groups 40
    python benchmarks/bench_index.py ... --runs 1      # one configuration only: 1, 2 or dask

Each run indexes the same photos into a new database, in its own process: the first `count` photos (sorted by
path; one LFW photo shows one person, sometimes a second face behind), plus `groups` group photos made of 2x2
tiles of the next LFW photos (500x500 px, four people or more). The time includes loading the network in every
worker (as a user pays it).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyconv.faces.index import photo_files  # noqa: E402
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS  # noqa: E402
from tinyconv.files import load_image, save_image  # noqa: E402

DASK = """
import sys
from distributed import LocalCluster
from tinyconv.faces.__main__ import main
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
    sys.exit(main(sys.argv[1:] + ["--dask", cluster.scheduler_address]))
"""
RUNS = {"1": ("1 worker", ["-m", "tinyconv.faces"], []),
        "2": ("2 workers", ["-m", "tinyconv.faces"], ["--workers", "2"]),
        "dask": ("Dask LocalCluster, 2 workers", ["-c", DASK], [])}


def group_photo(files):
    """Four photos of one size -> one (2h, 2w, 3) photo of them, as 2x2 tiles."""
    tiles = [load_image(f) for f in files]
    return np.concatenate([np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)], axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", required=True, help="a folder of photos")
    parser.add_argument("--count", type=int, default=60, help="index the first COUNT photos (default 60)")
    parser.add_argument("--groups", type=int, default=0, help="also index GROUPS group photos (2x2 tiles)")
    parser.add_argument("--preprocess", default=DEFAULT_PREPROCESS, help=f"(default {DEFAULT_PREPROCESS})")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS), help="configurations to run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photos = Path(folder) / "photos"
        photos.mkdir()
        files = photo_files([args.photos])
        for i, f in enumerate(files[:args.count]):
            (photos / f"{i:05d}{f.suffix}").symlink_to(f.resolve())
        rest = files[args.count:args.count + 4 * args.groups]
        for i in range(len(rest) // 4):
            save_image(photos / f"group{i:04d}.jpg", group_photo(rest[4 * i:4 * i + 4]))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__))] + sys.path))
        print(f"{args.count} photos and {len(rest) // 4} group photos of 2x2 photos, preprocessing "
              f"{args.preprocess}")
        from sides import describe
        print(describe(), flush=True)
        for label, command, extra in (RUNS[r] for r in args.runs):
            db = Path(folder) / f"{len(label)}.db"
            argv = ["index", str(photos), "--db", str(db), "--preprocess", args.preprocess, *extra]
            out = subprocess.run([sys.executable, *command, *argv], capture_output=True, text=True, env=env)
            if out.returncode:
                sys.exit(f"{label}: failed\n{out.stderr[-2000:]}")
            summary = out.stdout.strip().splitlines()[-1]
            photos_s, faces_s = re.search(r"([\d.]+) photos/s, ([\d.]+) faces/s", summary).groups()
            print(f"{label:<30} {photos_s:>6} photos/s {faces_s:>6} faces/s   ({summary.split(':')[0]})",
                  flush=True)


if __name__ == "__main__":
    main()
