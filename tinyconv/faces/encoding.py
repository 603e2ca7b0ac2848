"""From face images to 128-d unit encodings: the course's `img_to_encoding`, and `encode` for many images.

The distance between two faces is the L2 distance between their encodings (0 for the same image, 2 at most);
the course and FaceNet call two faces the same person when it is below a threshold.
"""
import hashlib

import numpy as np

from tinyconv import Tensor, no_grad
from tinyconv.faces.preprocess import load_face
from tinyconv.progress import Progress


def encode(model, images, preprocess="course", batch_size=32, progress=None):
    """Encode many images at once: paths or (H, W, 3) uint8 arrays -> (N, 128) float32, each row of unit length.

    preprocess: "course", "standardize", optionally with "-crop<N>" (see `tinyconv.faces.preprocess`).
    The model should be in inference mode (`facenet()` returns it so). `progress`: a label to print a progress
    line on stderr (images done, rate), a `Progress` to continue, or None for silence.
    """
    images = list(images)
    out = np.empty((len(images), 128), dtype=np.float32)
    meter = Progress(len(images), progress) if isinstance(progress, str) else progress
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        x = np.stack([load_face(image, preprocess) for image in chunk])
        with no_grad():
            y = model(Tensor(x)).data
        out[start:start + len(chunk)] = y / np.linalg.norm(y, axis=1, keepdims=True)
        if meter:
            meter.update(len(chunk))
    if isinstance(progress, str):
        meter.close()
    return out


def img_to_encoding(image_path, model, preprocess="course"):
    """The course's function: one image file -> its (128,) float32 encoding of unit length."""
    return encode(model, [image_path], preprocess)[0]


def model_fingerprint(model):
    """A short hex digest of every weight and statistic of `model`: encodings of different models never mix."""
    digest = hashlib.sha256()
    for name, array in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]
