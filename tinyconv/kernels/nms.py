"""Non-maximum suppression of boxes (MTCNN's, from Sandberg's detect_face.py), as one Numba loop.

Boxes are rows (x0, y0, x1, y1, score, ...) in MATLAB's inclusive pixel convention: a box covers x1 - x0 + 1
columns. Going down the boxes by decreasing score, each kept box removes every later box that overlaps it by more
than `threshold`, where the overlap is intersection over union ("union") or intersection over the smaller of the
two areas ("min").
"""
import numpy as np
from numba import njit


def nms(boxes, threshold, method="union"):
    """Indices of the boxes kept, highest score first. boxes: (n, >= 5) float array; method 'union' or 'min'."""
    if method not in ("union", "min"):
        raise ValueError(f"nms: method must be 'union' or 'min', got {method!r}")
    boxes = np.ascontiguousarray(boxes[:, :5], dtype=np.float64)
    return _nms(boxes, float(threshold), method == "min")


@njit(cache=True)
def _nms(boxes, threshold, use_min):
    n = boxes.shape[0]
    order = np.argsort(-boxes[:, 4], kind="mergesort")
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    removed = np.zeros(n, np.bool_)
    keep = np.empty(n, np.int64)
    count = 0
    for a in range(n):
        i = order[a]
        if removed[i]:
            continue
        keep[count] = i
        count += 1
        for b in range(a + 1, n):
            j = order[b]
            if removed[j]:
                continue
            w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]) + 1
            h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]) + 1
            if w <= 0 or h <= 0:
                continue
            inter = w * h
            overlap = inter / min(area[i], area[j]) if use_min else inter / (area[i] + area[j] - inter)
            if overlap > threshold:
                removed[j] = True
    return keep[:count]
