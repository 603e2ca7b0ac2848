"""From face images to 128-d unit encodings: the course's `img_to_encoding`, `encode` for many images, and
`encode_faces` for every face of a group photo.

The distance between two faces is the L2 distance between their encodings (0 for the same image, 2 at most);
the course and FaceNet call two faces the same person when it is below a threshold (`thresholds.same_person`).
With a "-flip" preprocessing the encoding of a face is the normalised mean of the encodings of the face and of its
mirror image (test-time augmentation).
"""
import hashlib

import numpy as np

from tinyconv import Tensor, no_grad
from tinyconv.faces.preprocess import all_faces, network_input, parse_preprocessing, prepare_face
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS
from tinyconv.files import load_image
from tinyconv.progress import Progress


def encode(model, images, preprocess=DEFAULT_PREPROCESS, batch_size=32, progress=None, pick="facenet"):
    """Encode many images at once: paths or (H, W, 3) uint8 arrays -> (N, 128) float32, each row of unit length.

    preprocess: see `tinyconv.faces.preprocess` (default: detection). One face per image: where the detector finds
    several, `pick` chooses ("facenet", "largest") or refuses ("one"); an image with no face is a ValueError
    naming it. The model should be in inference mode (`facenet()` returns it so). `progress`: a label to print a
    progress line on stderr (images done, rate), a `Progress` to continue, or None for silence.
    """
    return encode_views(model, images, preprocess, batch_size, progress, pick)[0]


def encode_views(model, images, preprocess=DEFAULT_PREPROCESS, batch_size=32, progress=None, pick="facenet",
                 fallback=False):
    """`encode`, returning (encodings, plain, found): `plain` are the encodings without the mirror image (the same
    array without "-flip"), `found` (N,) bool is False where no face was found and, with `fallback`, the central
    box was used instead of an error (see `preprocess.one_face`)."""
    images = list(images)
    flip = parse_preprocessing(preprocess).flip
    out, plain = np.empty((2, len(images), 128), dtype=np.float32)
    found = np.ones(len(images), dtype=bool)
    meter = Progress(len(images), progress) if isinstance(progress, str) else progress
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        prepared = [prepare_face(image, preprocess, pick, fallback) for image in chunk]
        x = np.stack([p[0] for p in prepared])
        found[start:start + len(chunk)] = [p[1] for p in prepared]
        stop = start + len(chunk)
        out[start:stop], plain[start:stop] = _network(model, x, flip)
        if meter:
            meter.update(len(chunk))
    if isinstance(progress, str):
        meter.close()
    return out, plain, found


def encode_faces(model, image, preprocess=DEFAULT_PREPROCESS):
    """Every face of one image (a group photo) -> (boxes (F, 4) as (x0, y0, x1, y1) pixels, encodings (F, 128)).

    With detection, F is the number of faces found (0 for none); otherwise the one central box of the preprocessing.
    """
    rgb = image if isinstance(image, np.ndarray) else load_image(image)
    faces = all_faces(rgb, preprocess)
    if not faces:
        return np.empty((0, 4), np.float32), np.empty((0, 128), np.float32)
    x = np.stack([network_input(face.pixels, preprocess) for face in faces])
    return np.stack([face.box for face in faces]).astype(np.float32), _network(model, x, parse_preprocessing(
        preprocess).flip)[0]


def img_to_encoding(image_path, model, preprocess=DEFAULT_PREPROCESS):
    """The course's function: one image file -> its (128,) float32 encoding of unit length.

    The face is found by the detector (FaceNet's choice where there are several; no face: ValueError); the
    course's own preprocessing is preprocess="course".
    """
    return encode(model, [image_path], preprocess)[0]


def model_fingerprint(model):
    """A short hex digest of every weight and statistic of `model`: encodings of different models never mix."""
    digest = hashlib.sha256()
    for name, array in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _network(model, x, flip):
    """(N, 160, 160, 3) network inputs -> (encodings, plain encodings), unit rows; with flip the mirror images go
    through the network in the same batch and encodings = normalise(plain + mirror's)."""
    with no_grad():
        y = model(Tensor(np.concatenate([x, x[:, :, ::-1]]) if flip else x)).data
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    if not flip:
        return y, y
    plain, mirror = y[:len(x)], y[len(x):]
    both = plain + mirror
    return both / np.linalg.norm(both, axis=1, keepdims=True), plain
