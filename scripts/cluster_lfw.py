"""How well `cluster` groups faces: Chinese whispers on the 7,701 LFW images of pairs.txt, identities from the
file names, at several thresholds: pairwise precision and recall, BCubed precision, recall and F.

    python -m tinyconv.faces evaluate --lfw ../shared/data/faces/lfw        # once: fills the encoding cache
    python scripts/cluster_lfw.py --lfw ../shared/data/faces/lfw

The encodings come from the cache that `evaluate` fills ($TINYCONV_HOME/cache, tinyconv/faces/cache.py), so this
runs in seconds; images not in the cache yet are left out (the count is printed).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyconv.faces.cache import cache_path  # noqa: E402
from tinyconv.faces.cluster import bcubed_scores, cluster_faces, pairwise_scores  # noqa: E402
from tinyconv.faces.lfw import read_pairs  # noqa: E402
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS  # noqa: E402
from tinyconv.models.facenet import facenet  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", required=True, help="LFW folder (pairs.txt, lfw-deepfunneled/)")
    parser.add_argument("--preprocess", default=DEFAULT_PREPROCESS, help=f"(default {DEFAULT_PREPROCESS})")
    parser.add_argument("--thresholds", type=float, nargs="+",
                        default=[0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2])
    parser.add_argument("--cache", help="encoding cache folder (default $TINYCONV_HOME/cache)")
    args = parser.parse_args()

    wanted = {str(Path(p).resolve()) for p in read_pairs(args.lfw).images()}
    path = cache_path(facenet(), args.preprocess, args.cache)
    if not path.is_file():
        sys.exit(f"error: {path}: no cached encodings; run `python -m tinyconv.faces evaluate --lfw {args.lfw} "
                 f"--preprocess {args.preprocess}` first")
    with h5py.File(path, "r") as f:
        paths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][()]]
        encodings = f["encodings"][()].astype(np.float32)
    keep = [i for i, p in enumerate(paths) if p in wanted]
    paths, encodings = [paths[i] for i in keep], encodings[keep]
    identities = np.array([Path(p).parent.name for p in paths])
    print(f"{len(paths)} of the {len(wanted)} images of pairs.txt (cached encodings, preprocessing "
          f"{args.preprocess}), {len(set(identities))} people")
    print("| threshold | clusters | pairwise precision | pairwise recall | BCubed precision | BCubed recall | "
          "BCubed F | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    best = None
    for threshold in args.thresholds:
        start = time.perf_counter()
        labels = cluster_faces(encodings, threshold)
        seconds = time.perf_counter() - start
        pp, pr = pairwise_scores(labels, identities)
        bp, br, bf = bcubed_scores(labels, identities)
        print(f"| {threshold:.2f} | {labels.max() + 1} | {pp:.4f} | {pr:.4f} | {bp:.4f} | {br:.4f} | {bf:.4f} | "
              f"{seconds:.1f} |", flush=True)
        if best is None or bf > best[1]:
            best = (threshold, bf)
    print(f"best BCubed F: {best[1]:.4f} at threshold {best[0]:.2f}")


if __name__ == "__main__":
    main()
