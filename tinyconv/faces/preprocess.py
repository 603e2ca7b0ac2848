"""From an image file to the (160, 160, 3) float array FaceNet reads.

Two ways to scale the pixels (`preprocess`):

- "course": nearest-neighbour resize to 160x160 and divide by 255 (values in 0..1). This is exactly what the
  Coursera notebook does (`load_img(path, target_size=(160, 160))`, then `/ 255`), so it reproduces its distances.
- "standardize": FaceNet's own per-image standardisation, (x - mean) / max(std, 1/sqrt(number of values)), over
  the whole 160x160x3 image, after a bilinear resize. The network was trained on images prepared this way, and it
  is clearly better on real photos (see `tinyconv.faces.thresholds` for the LFW numbers).

and where the face is, an optional "-crop<N>" suffix: keep the central N x N pixel box first, for photos with
background such as LFW's 250 px deep-funneled images, where the face fills the central ~150 px. Without it the
whole image is used (right for tight face crops such as the course's 96 px images); a box larger than the image
keeps the whole image. So a preprocessing is named by one string, recorded as is in databases and caches:
"course", "standardize", "standardize-crop150", "course-crop160", ...
"""
import numpy as np
from PIL import Image

from tinyconv.files import load_image

SIZE = 160  # FaceNet's input side in pixels
MODES = ("course", "standardize")


def parse_preprocessing(preprocess):
    """"standardize-crop150" -> ("standardize", 150); "course" -> ("course", None). Unknown names: ValueError."""
    mode, sep, crop = str(preprocess).partition("-crop")
    if mode not in MODES or (sep and not (crop.isdigit() and int(crop) > 0)):
        raise ValueError(f"unknown preprocessing {preprocess!r}: expected course or standardize, optionally "
                         f"followed by -crop<pixels> (e.g. standardize-crop150)")
    return mode, int(crop) if crop else None


def central_crop(rgb, crop):
    """The central crop x crop box of an (H, W, 3) image (the whole image where it is smaller than the box)."""
    h, w = rgb.shape[:2]
    ch, cw = min(crop, h), min(crop, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return rgb[top:top + ch, left:left + cw]


def prewhiten(x):
    """FaceNet's per-image standardisation: zero mean, unit std over all values (std floored at 1/sqrt(size))."""
    x = np.asarray(x, dtype=np.float32)
    std = max(float(x.std()), 1.0 / np.sqrt(x.size))
    return (x - x.mean()) / np.float32(std)


def preprocess_image(rgb, preprocess="course"):
    """(H, W, 3) uint8 RGB image -> (160, 160, 3) float32 array ready for the network."""
    mode, crop = parse_preprocessing(preprocess)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {rgb.shape} and dtype {rgb.dtype}")
    if crop is not None:
        rgb = central_crop(rgb, crop)
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if image.size != (SIZE, SIZE):
        resample = Image.NEAREST if mode == "course" else Image.BILINEAR
        image = image.resize((SIZE, SIZE), resample)
    pixels = np.asarray(image, dtype=np.float32)
    return pixels / np.float32(255.0) if mode == "course" else prewhiten(pixels)


def load_face(image, preprocess="course"):
    """An image path (or an (H, W, 3) uint8 array) -> (160, 160, 3) float32; unreadable files raise ValueError."""
    rgb = image if isinstance(image, np.ndarray) else load_image(image)
    return preprocess_image(rgb, preprocess)
