"""Find faces with MTCNN and crop them as FaceNet does.

    detect_faces(image)              -> [Face(box, score, landmarks), ...], best score first
    align(image, face)               -> (160, 160, 3) uint8: FaceNet's crop (box + margin, no warp)
    align(image, face, similarity=True)   the 5 landmarks mapped onto ArcFace's template instead
    choose_face(faces, image_shape)  -> the face FaceNet's align_dataset_mtcnn.py keeps among several

`detect_faces` follows David Sandberg's `align/detect_face.py` (FaceNet's own detector) step by step, with its
defaults. Boxes are the numbers it returns: (x0, y0, x1, y1) in image pixels, which FaceNet crops as
`img[y0:y1, x0:x1]`; its MATLAB origin shows in the +1 of widths (`x1 - x0 + 1`) inside the cascade.
"""
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tinyconv.files import load_image
from tinyconv.kernels.nms import nms
from tinyconv.kernels.resize import crop_resize
from tinyconv.models.mtcnn import mtcnn, scale_pixels
from tinyconv.tensor import no_grad

STRIDE, CELL = 2, 12          # P-Net: one output cell every 2 pixels, each seeing a 12x12 window
# ArcFace's 5-point template for a 112x112 crop: left eye, right eye, nose, left and right mouth corners (x, y)
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                         [70.7299, 92.2041]])


@dataclass
class Face:
    """One detected face. box: (x0, y0, x1, y1) float pixels; score: O-Net's face probability; landmarks: (5, 2)
    float (x, y) of the left eye, right eye, nose, left mouth corner, right mouth corner, left and right as seen in
    the image (the "left eye" is the one nearer the image's left edge)."""
    box: np.ndarray
    score: float
    landmarks: np.ndarray


@functools.lru_cache(maxsize=1)
def networks():
    """The pretrained MTCNN, loaded once per process."""
    return mtcnn()


def detect_faces(image, min_face=20, thresholds=(0.6, 0.7, 0.7), factor=0.709):
    """All faces in `image` (a path, or an (H, W, 3) uint8 RGB array), highest score first.

    min_face: the smallest face side to look for, in pixels (sets the first pyramid scale, 12 / min_face).
    thresholds: face probabilities that P-Net, R-Net and O-Net must exceed. factor: scale between pyramid levels.
    An image too small for the pyramid (smaller than min_face, or than 12 px) or without a face gives [].
    """
    rgb = _read(image)
    min_face, thresholds, factor = _check_arguments(min_face, thresholds, factor)
    model = networks()
    with no_grad():
        boxes = _stage1(rgb, model.pnet, min_face, thresholds[0], factor)
        if len(boxes):
            boxes = _stage2(rgb, model.rnet, boxes, thresholds[1])
        if not len(boxes):
            return []
        boxes, points = _stage3(rgb, model.onet, boxes, thresholds[2])
    order = np.argsort(-boxes[:, 4], kind="stable")
    return [Face(box=boxes[i, :4].copy(), score=float(boxes[i, 4]), landmarks=points[i].copy()) for i in order]


# ----- the three stages ---------------------------------------------------------------------------------------------
def pyramid_scales(height, width, min_face, factor):
    """Sandberg's scales: m = 12 / min_face, then m * factor^k while the image's shorter side stays >= 12 px."""
    scales, scale = [], 12.0 / min_face
    shorter = min(height, width) * scale
    while shorter >= CELL:
        scales.append(scale)
        scale *= factor
        shorter *= factor
    return scales


def _stage1(rgb, pnet, min_face, threshold, factor):
    """P-Net on every pyramid level: (n, 5) squared candidate boxes (x0, y0, x1, y1, score), integer-valued."""
    height, width = rgb.shape[:2]
    found = [np.empty((0, 9))]
    for scale in pyramid_scales(height, width, min_face, factor):
        level = _resized(rgb, [[0, 0, height, width]], math.ceil(height * scale), math.ceil(width * scale))
        probability, regression = pnet(level)
        boxes = _cells_to_boxes(probability.data[0], regression.data[0], scale, threshold)
        found.append(boxes[nms(boxes, 0.5, "union")])                 # NMS per scale
    boxes = np.concatenate(found)
    boxes = boxes[nms(boxes, 0.7, "union")]                            # NMS across scales
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]        # (Sandberg: no +1 at this step)
    corrected = boxes[:, :4] + boxes[:, 5:9] * np.stack([w, h, w, h], axis=1)
    return np.fix(_square(np.column_stack([corrected, boxes[:, 4]])))


def _cells_to_boxes(probability, regression, scale, threshold):
    """P-Net cells above threshold -> (n, 9): box in the image (x0, y0, x1, y1), score, regression (dx0..dy1)."""
    rows, cols = np.nonzero(probability >= threshold)
    x0, y0 = np.fix((STRIDE * cols + 1) / scale), np.fix((STRIDE * rows + 1) / scale)
    x1, y1 = np.fix((STRIDE * cols + CELL) / scale), np.fix((STRIDE * rows + CELL) / scale)
    return np.column_stack([x0, y0, x1, y1, probability[rows, cols], regression[rows, cols]]).reshape(-1, 9)


def _stage2(rgb, rnet, boxes, threshold):
    """R-Net on 24x24 crops of the candidates, in one batch: the boxes it keeps, regressed and squared."""
    probability, regression = rnet(_crops(rgb, boxes, 24))
    keep = probability.data > threshold
    boxes = np.column_stack([boxes[keep, :4], probability.data[keep]])
    regression = regression.data[keep]
    pick = nms(boxes, 0.7, "union")
    return _square(_regress(boxes[pick], regression[pick]))


def _stage3(rgb, onet, boxes, threshold):
    """O-Net on 48x48 crops, in one batch: final boxes (n, 5) and landmarks (n, 5, 2), after a 'Min' NMS."""
    boxes = np.fix(boxes)
    probability, regression, landmarks = onet(_crops(rgb, boxes, 48))
    keep = probability.data > threshold
    boxes = np.column_stack([boxes[keep, :4], probability.data[keep]])
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    p = landmarks.data[keep]
    # landmarks in the box's unit coordinates -> pixels (Sandberg's -1: MATLAB counts pixels from 1)
    points = np.stack([boxes[:, 0:1] + w * p[:, 0:5] - 1, boxes[:, 1:2] + h * p[:, 5:10] - 1], axis=2)
    boxes = _regress(boxes, regression.data[keep])
    pick = nms(boxes, 0.7, "min")
    return boxes[pick], points[pick]


# ----- box arithmetic, as in Sandberg's detect_face.py --------------------------------------------------------------
def _regress(boxes, regression):
    """Sandberg's bbreg: move each side by its regression times the box's width or height (x1 - x0 + 1)."""
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.copy()
    out[:, :4] += regression * np.stack([w, h, w, h], axis=1)
    return out


def _square(boxes):
    """Sandberg's rerec: the square with the box's longer side, about the same centre."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out = boxes.copy()
    out[:, 0] += (w - side) / 2
    out[:, 1] += (h - side) / 2
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def _crops(rgb, boxes, size):
    """(n, size, size, 3) network inputs (`_resized`) of the integer boxes (MATLAB-inclusive: columns x0-1 .. x1-1
    counted from 0), zero where a box leaves the image, resized to size x size (area averaging or bilinear)."""
    x0, y0, x1, y1 = boxes[:, :4].astype(np.int64).T
    return _resized(rgb, np.stack([y0 - 1, x0 - 1, np.maximum(y1 - y0 + 1, 1), np.maximum(x1 - x0 + 1, 1)], 1),
                    size, size)


def _resized(rgb, boxes, height, width):
    """(n, height, width, 3) float32 network inputs (`scale_pixels`) of the boxes (top, left, height, width): a view
    of crops stored transposed, so that the networks' own transposition of their input is a free view again."""
    return scale_pixels(crop_resize(rgb, boxes, height, width, transpose=True)).transpose(0, 2, 1, 3)


# ----- what FaceNet does with the faces -----------------------------------------------------------------------------
def choose_face(faces, image_shape):
    """The face FaceNet's align_dataset_mtcnn.py keeps: the largest box area minus twice the squared distance
    from the box's centre to the image's centre. image_shape: (H, W, ...)."""
    if not faces:
        raise ValueError("choose_face: no faces to choose from")
    boxes = np.array([face.box for face in faces])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    dx = (boxes[:, 0] + boxes[:, 2]) / 2 - image_shape[1] / 2
    dy = (boxes[:, 1] + boxes[:, 3]) / 2 - image_shape[0] / 2
    return faces[int(np.argmax(area - 2 * (dx ** 2 + dy ** 2)))]


def align(image, face, size=160, margin=32, similarity=False):
    """The face as a (size, size, 3) uint8 crop.

    Default: FaceNet's crop (align_dataset_mtcnn.py): the box widened by margin/2 on every side, clipped to the
    image, resized bilinearly, no rotation. similarity=True: the 5 landmarks mapped by a least-squares similarity
    transform (rotation, uniform scale, shift) onto ArcFace's 5-point template scaled to `size` (margin unused).
    """
    rgb = _read(image)
    if not (isinstance(size, (int, np.integer)) and size > 0) or margin < 0:
        raise ValueError(f"align: size must be a positive integer and margin >= 0, got size {size!r}, "
                         f"margin {margin!r}")
    if similarity:
        return _warp_to_template(rgb, np.asarray(face.landmarks, dtype=np.float64), size)
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = np.asarray(face.box, dtype=np.float64)
    left, top = int(max(x0 - margin / 2, 0)), int(max(y0 - margin / 2, 0))
    right, bottom = int(min(x1 + margin / 2, width)), int(min(y1 + margin / 2, height))
    if right <= left or bottom <= top:
        raise ValueError(f"align: the box {tuple(np.round(face.box, 1))} lies outside the {width}x{height} image")
    crop = Image.fromarray(np.ascontiguousarray(rgb[top:bottom, left:right]))
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


def similarity_transform(source, target):
    """(2, 3) matrix A of the similarity (s R, t) that maps the points `source` (n, 2) closest to `target` (n, 2)
    in least squares (Umeyama 1991, without reflection): target ~ source @ A[:, :2].T + A[:, 2]."""
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mean_s, target - mean_t
    u, sigma, vt = np.linalg.svd(t.T @ s / len(source))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = (sigma * np.diag(d)).sum() / s.var(axis=0).sum()
    return np.column_stack([scale * rotation, mean_t - scale * rotation @ mean_s])


def _warp_to_template(rgb, landmarks, size):
    forward = similarity_transform(landmarks, TEMPLATE_112 * (size / 112))
    inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]   # output pixel -> input pixel, as PIL wants
    image = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(image.transform((size, size), Image.AFFINE, tuple(inverse.ravel()), Image.BILINEAR))


# ----- arguments ------------------------------------------------------------------------------------------------------
def _read(image):
    if isinstance(image, (str, Path)):
        return load_image(image)
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an image path or an (H, W, 3) uint8 RGB array, got shape {rgb.shape} and "
                         f"dtype {rgb.dtype}")
    return rgb


def _check_arguments(min_face, thresholds, factor):
    if not isinstance(min_face, (int, float, np.number)) or not min_face > 0:
        raise ValueError(f"detect_faces: min_face must be a positive number of pixels, got {min_face!r}")
    thresholds = tuple(thresholds)
    if len(thresholds) != 3 or not all(isinstance(t, (int, float, np.number)) and 0 < t < 1 for t in thresholds):
        raise ValueError(f"detect_faces: thresholds must be three probabilities in (0, 1) (P-Net, R-Net, O-Net), "
                         f"got {thresholds!r}")
    if not isinstance(factor, (int, float, np.number)) or not 0 < factor < 1:
        raise ValueError(f"detect_faces: factor must be in (0, 1) (the scale between pyramid levels), got "
                         f"{factor!r}")
    return float(min_face), tuple(float(t) for t in thresholds), float(factor)
