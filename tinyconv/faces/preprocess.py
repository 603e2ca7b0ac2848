"""From an image to the (160, 160, 3) float arrays FaceNet reads: where the faces are, and how pixels are scaled.

A preprocessing is named by one string, recorded as is in face databases and encoding caches:
`<mode>[-crop<N>][-flip]`, e.g. "mtcnn", "mtcnn-flip", "standardize-crop150", "course".

- "mtcnn" (detection; the default is in `tinyconv.faces.thresholds.DEFAULT_PREPROCESS`): the MTCNN detector
  (`tinyconv.faces.detect`) finds every face; each gets FaceNet's crop (the box widened by a margin of 32 px at
  160 px, see `facenet_crop`; bilinear: what the FaceNet weights were trained on) and FaceNet's per-image
  standardisation. An image may hold
  no face, one, or several (a group photo).
- "standardize": no detection; FaceNet's standardisation, (x - mean) / max(std, 1/sqrt(number of values)), of
  the whole image, bilinear-resized to 160: for images that are already face crops. With "-crop<N>", of the
  central N x N box first (LFW's deep-funneled 250 px images: "standardize-crop150").
- "course": the Coursera notebook's own (`load_img(path, target_size=(160, 160))`, then `/ 255`): nearest-neighbour
  resize and divide by 255, no detection. It reproduces the course's distances on its 96 px face crops.
- "-flip": test-time augmentation, the encoding is the normalised mean of the encodings of the face and of its
  mirror image (done in `tinyconv.faces.encoding`).

Small images: the detector needs some context around a face. An image whose shorter side is below
`SMALL_IMAGE` pixels in which no face is found (a tight crop such as the course's 96 px images) is searched again
after padding every side by half its size with the image's edge pixels; the crop is then cut from the original
image (clipped at its border).
"""
from typing import NamedTuple

import numpy as np
from PIL import Image

from tinyconv.faces.detect import Face, align, choose_face, detect_faces
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS
from tinyconv.files import load_image

SIZE = 160          # FaceNet's input side in pixels
MARGIN = 32         # FaceNet's crop margin around the detected box, at SIZE
SMALL_IMAGE = 200   # below this shorter side, an image with no face found is searched again, padded
FALLBACK_CROP = 0.6  # evaluate's fallback when no face is found: the central 0.6 x shorter side (150 px of 250)
MODES = ("mtcnn", "standardize", "course")
PICKS = ("facenet", "largest", "one")


class Preprocessing(NamedTuple):
    mode: str          # "mtcnn", "standardize" or "course"
    crop: int | None   # side of the central box in pixels (not with mtcnn); None: the whole image
    flip: bool         # encode the face and its mirror image


class FaceCrop(NamedTuple):
    box: np.ndarray     # (x0, y0, x1, y1) in the image's pixels: the detected face, or the central box used
    pixels: np.ndarray  # (h, w, 3) uint8, what the network sees before the resize to 160 and the scaling


def parse_preprocessing(preprocess):
    """"standardize-crop150" -> Preprocessing("standardize", 150, False); unknown names: ValueError."""
    name = str(preprocess)
    flip = name.endswith("-flip")
    mode, sep, crop = name.removesuffix("-flip").partition("-crop")
    if mode not in MODES or (sep and not (crop.isdigit() and int(crop) > 0)) or (sep and mode == "mtcnn"):
        raise ValueError(f"unknown preprocessing {preprocess!r}: expected mtcnn, standardize or course; the last "
                         f"two optionally followed by -crop<pixels> (e.g. standardize-crop150); any of them "
                         f"optionally followed by -flip")
    return Preprocessing(mode, int(crop) if crop else None, flip)


def central_box(shape, crop):
    """(x0, y0, x1, y1) of the central crop x crop box of an image of shape (H, W, ...) (clipped to the image)."""
    h, w = shape[:2]
    ch, cw = min(crop, h), min(crop, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return np.array([left, top, left + cw, top + ch], dtype=np.float32)


def central_crop(rgb, crop):
    """The central crop x crop box of an (H, W, 3) image (the whole image where it is smaller than the box)."""
    x0, y0, x1, y1 = central_box(rgb.shape, crop).astype(int)
    return rgb[y0:y1, x0:x1]


def prewhiten(x):
    """FaceNet's per-image standardisation: zero mean, unit std over all values (std floored at 1/sqrt(size))."""
    x = np.asarray(x, dtype=np.float32)
    std = max(float(x.std()), 1.0 / np.sqrt(x.size))
    return (x - x.mean()) / np.float32(std)


def network_input(pixels, preprocess):
    """A face crop, (h, w, 3) uint8 -> (160, 160, 3) float32: resized (nearest for "course", else bilinear), scaled."""
    mode = parse_preprocessing(preprocess).mode
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.NEAREST if mode == "course" else Image.BILINEAR)
    x = np.asarray(image, dtype=np.float32)
    return x / np.float32(255.0) if mode == "course" else prewhiten(x)


def detect(rgb):
    """MTCNN's faces in an (H, W, 3) uint8 image, sorted by score; small images are retried padded (module doc)."""
    faces = detect_faces(rgb)
    h, w = rgb.shape[:2]
    if faces or min(h, w) >= SMALL_IMAGE:
        return faces
    pad = max(h, w) // 2
    shift = np.array([pad, pad], dtype=np.float32)
    padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return [Face(face.box - np.tile(shift, 2), face.score, face.landmarks - shift) for face in detect_faces(padded)]


def facenet_crop(rgb, face):
    """FaceNet's crop of a detected face, (160, 160, 3) uint8, with the margin at the scale of the face: the box
    fills SIZE - MARGIN = 128 of the 160 pixels whatever the photo's resolution (facenet-pytorch's reading of
    margin 32; Sandberg's code adds 32 pixels of the photo, which is about the same on LFW's 250 px images but
    half the face again for the 30-40 px faces of the course's images)."""
    side = max(face.box[2] - face.box[0], face.box[3] - face.box[1])
    return align(rgb, face, size=SIZE, margin=MARGIN * side / (SIZE - MARGIN))


def all_faces(rgb, preprocess):
    """Every face the preprocessing sees in an (H, W, 3) uint8 image -> list of FaceCrop.

    "mtcnn": one per detected face (maybe none); otherwise the one central box (the whole image without -crop).
    """
    rgb = _check_rgb(rgb)
    mode, crop, _ = parse_preprocessing(preprocess)
    if mode == "mtcnn":
        return [FaceCrop(face.box, facenet_crop(rgb, face)) for face in detect(rgb)]
    box = central_box(rgb.shape, crop if crop is not None else max(rgb.shape))
    x0, y0, x1, y1 = box.astype(int)
    return [FaceCrop(box, rgb[y0:y1, x0:x1])]


def one_face(rgb, preprocess, pick="facenet", source="image", fallback=False):
    """The face of an image that holds one person -> (FaceCrop, found).

    pick, when the detector finds several faces: "facenet" takes FaceNet's choice (the largest box penalised by
    its distance from the centre), "largest" the largest box, "one" refuses the image. No face: ValueError naming
    `source`, or with `fallback` the central box of FALLBACK_CROP of the shorter side (and found = False).
    """
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {PICKS}, got {pick!r}")
    rgb = _check_rgb(rgb)
    if parse_preprocessing(preprocess).mode != "mtcnn":
        return all_faces(rgb, preprocess)[0], True
    faces = detect(rgb)
    if not faces:
        if not fallback:
            raise ValueError(f"{source}: no face found")
        box = central_box(rgb.shape, round(FALLBACK_CROP * min(rgb.shape[:2])))
        x0, y0, x1, y1 = box.astype(int)
        return FaceCrop(box, rgb[y0:y1, x0:x1]), False
    if len(faces) > 1 and pick == "one":
        raise ValueError(f"{source}: {len(faces)} faces found where one person was expected (a photo of one "
                         "person, or take the largest face: --largest)")
    if pick == "largest":
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    else:
        face = choose_face(faces, rgb.shape)
    return FaceCrop(face.box, facenet_crop(rgb, face)), True


def prepare_face(image, preprocess=DEFAULT_PREPROCESS, pick="facenet", fallback=False):
    """An image path or (H, W, 3) uint8 array -> ((160, 160, 3) float32 network input, face found?)."""
    rgb = image if isinstance(image, np.ndarray) else load_image(image)
    source = "image" if isinstance(image, np.ndarray) else str(image)
    face, found = one_face(rgb, preprocess, pick, source, fallback)
    return network_input(face.pixels, preprocess), found


def load_face(image, preprocess=DEFAULT_PREPROCESS, pick="facenet"):
    """An image path (or (H, W, 3) uint8 array) -> (160, 160, 3) float32; unreadable or faceless: ValueError."""
    return prepare_face(image, preprocess, pick)[0]


def _check_rgb(rgb):
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {rgb.shape} and dtype {rgb.dtype}")
    return rgb
