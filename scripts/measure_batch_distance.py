"""How far apart are a face's encodings alone and in a batch? The course's check, for all twelve faces.

    python scripts/measure_batch_distance.py [--shared ../shared]

Encodes the course's database (12 faces, the course's preprocessing) once as one batch and once one face at a
time, and prints the L2 distance between the two encodings of each face. The course's `who_is_it` check
(tests/test_faces.py) wants younes's within 1e-6. Every layer whose output has 256 pixels or more gives an image
the same bits alone and in a batch (`image_tiles`, the rows kernels), so what is left comes from FaceNet's 8x8
and 3x3 layers; any change to their arithmetic draws these numbers anew.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tinyconv.faces.encoding import encode  # noqa: E402
from tinyconv.models.facenet import facenet  # noqa: E402

NAMES = ["danielle", "younes", "tian", "andrew", "kian", "dan", "sebastiano", "bertrand", "kevin", "felix", "benoit",
         "arnaud"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    folder = args.shared / "data" / "faces" / "coursera"
    images = [folder / f"{name}.{'png' if name == 'danielle' else 'jpg'}" for name in NAMES]
    if not all(path.is_file() for path in images):
        sys.exit(f"error: the course's faces are not in {folder} (give --shared)")
    model = facenet()
    batch = encode(model, images, "course")
    alone = np.stack([encode(model, [path], "course")[0] for path in images])
    distances = np.linalg.norm(batch - alone, axis=1)
    for name, d in zip(NAMES, distances):
        print(f"{name:12s} {d:.3g}")
    print(f"largest: {distances.max():.3g} ({NAMES[int(distances.argmax())]}); younes: {distances[1]:.3g}")


if __name__ == "__main__":
    main()
