"""Cut boxes out of an image and resize them, all boxes in one parallel Numba loop (MTCNN's crops and pyramid).

Each box (top, left, height, width) in pixels may reach outside the image: cells outside count as zeros (MTCNN pads
its crops with black). Along each axis, a box of `length` cells becomes `n` output cells:
- shrinking (length >= n): area averaging, as OpenCV's INTER_AREA (which MTCNN's reference code uses): output
  cell i is the mean of the input over [i s, (i + 1) s) with s = length / n, cells cut by the edges weighted by the
  part inside;
- enlarging (length < n): bilinear interpolation between cell centres (source x = (i + 0.5) s - 0.5, clamped).
The two axes are independent (weights are products). With transpose=True each crop is stored with its axes
swapped, (width, height), in the same pass: MTCNN's networks see images transposed, and NumPy's transposing copy
of a pyramid level costs more than resizing it (7 ms for 768x576x3 float32).
"""
import math

import numpy as np
from numba import njit, prange

ROWS_PER_JOB = 8    # output rows per parallel job


def crop_resize(image, boxes, height, width, transpose=False):
    """(n, height, width, C) float32: the boxes (n, 4) int (top, left, box_height, box_width) of `image` (H, W, C)
    uint8 or float, each resized to height x width; transpose=True: (n, width, height, C), out[k, j, i] = the
    resized crop's pixel (i, j)."""
    boxes = np.ascontiguousarray(boxes, dtype=np.int64).reshape(-1, 4)
    if np.any(boxes[:, 2:] < 1):
        raise ValueError(f"crop_resize: every box needs a height and width of at least 1, got "
                         f"{boxes[boxes[:, 2:].min(1) < 1][0]}")
    out = np.empty((len(boxes), width, height, image.shape[2]) if transpose else
                   (len(boxes), height, width, image.shape[2]), np.float32)
    _crop_resize(np.ascontiguousarray(image), boxes, out.transpose(0, 2, 1, 3) if transpose else out)
    return out


@njit(cache=True)
def _taps(start, length, n, limit):
    """Input indices (n, T) and weights (n, T) of the n output cells along one axis; cells outside 0..limit-1 get
    weight 0 (index 0)."""
    scale = length / n
    taps = int(math.ceil(scale)) + 1 if scale >= 1 else 2
    index = np.zeros((n, taps), np.int64)
    weight = np.zeros((n, taps), np.float32)
    for i in range(n):
        if scale >= 1:                                  # area: overlap of [a, a+1) with [lo, hi), over the width
            lo, hi = i * scale, (i + 1) * scale
            a = int(math.floor(lo))
            for t in range(taps):
                overlap = min(a + t + 1, hi) - max(a + t, lo)
                if overlap > 0 and 0 <= start + a + t < limit and a + t < length:
                    index[i, t] = start + a + t
                    weight[i, t] = overlap / scale
        else:                                           # bilinear between the two nearest cell centres
            source = min(max((i + 0.5) * scale - 0.5, 0.0), length - 1.0)
            a = int(math.floor(source))
            b = min(a + 1, length - 1)
            fraction = source - a
            if 0 <= start + a < limit:
                index[i, 0], weight[i, 0] = start + a, 1 - fraction
            if 0 <= start + b < limit:
                index[i, 1], weight[i, 1] = start + b, fraction
    return index, weight


@njit(parallel=True, cache=True)
def _crop_resize(image, boxes, out):
    """Separable: for each output row, the weighted sum of its input rows (a contiguous pass over the box's columns
    inside the image), then the weighted sums of that line's columns. out (n, height, width, C) may be a view."""
    n, height, width, channels = out.shape
    blocks = (height + ROWS_PER_JOB - 1) // ROWS_PER_JOB
    for job in prange(n * blocks):                      # a job: a few output rows of one box
        k, first = job // blocks, (job % blocks) * ROWS_PER_JOB
        top, left, box_h, box_w = boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3]
        rows, row_w = _taps(top, box_h, height, image.shape[0])
        cols, col_w = _taps(left, box_w, width, image.shape[1])
        x0, x1 = max(left, 0), min(left + box_w, image.shape[1])     # the box's columns inside the image
        line = np.empty((max(x1 - x0, 1), channels), np.float32)
        flat = line.reshape(-1)
        for i in range(first, min(first + ROWS_PER_JOB, height)):
            flat[:] = 0
            for a in range(rows.shape[1]):
                wa = row_w[i, a]
                if wa != 0:
                    source = image[rows[i, a], x0:x1].reshape(-1)     # contiguous: one vectorised pass
                    for x in range(source.shape[0]):
                        flat[x] += wa * source[x]
            for j in range(width):
                for c in range(channels):
                    total = 0.0
                    for b in range(cols.shape[1]):
                        if col_w[j, b] != 0:                     # (zero weights: outside the image, index 0)
                            total += col_w[j, b] * line[cols[j, b] - x0, c]
                    out[k, i, j, c] = total
