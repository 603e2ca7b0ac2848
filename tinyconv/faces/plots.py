"""Two plots of a verification experiment, drawn with Pillow and written as PNG: the ROC curve, and histograms of
the distances of same-person and different-person pairs with the chosen threshold."""
import numpy as np
from PIL import Image, ImageDraw

from tinyconv.files import atomic_write

WIDTH, HEIGHT, MARGIN = 640, 480, 60
BLUE, ORANGE, GREY, BLACK = (31, 119, 180), (255, 127, 14), (200, 200, 200), (0, 0, 0)


def _canvas(title, xlabel, ylabel):
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([MARGIN, MARGIN // 2, WIDTH - MARGIN // 2, HEIGHT - MARGIN], outline=BLACK)
    draw.text((MARGIN, 3), title, fill=BLACK)
    draw.text(((WIDTH - len(xlabel) * 6) // 2, HEIGHT - 22), xlabel, fill=BLACK)
    draw.text((4, MARGIN // 2 - 12), ylabel, fill=BLACK)
    return image, draw


def _to_pixels(x, y, xmax, ymax):
    """Data coordinates (0..xmax, 0..ymax) -> pixel coordinates inside the frame."""
    left, right, top, bottom = MARGIN, WIDTH - MARGIN // 2, MARGIN // 2, HEIGHT - MARGIN
    return left + (right - left) * np.asarray(x) / xmax, bottom - (bottom - top) * np.asarray(y) / ymax


def _ticks(draw, xmax, ymax, nx=5, ny=5):
    for i in range(nx + 1):
        px, py = _to_pixels(xmax * i / nx, 0, xmax, ymax)
        draw.line([px, py, px, py + 4], fill=BLACK)
        draw.text((px - 10, py + 6), f"{xmax * i / nx:.2g}", fill=BLACK)
    for i in range(ny + 1):
        px, py = _to_pixels(0, ymax * i / ny, xmax, ymax)
        draw.line([px - 4, py, px, py], fill=BLACK)
        draw.text((px - 34, py - 6), f"{ymax * i / ny:.3g}", fill=BLACK)


def _save(path, image):
    with atomic_write(path) as tmp:
        image.save(tmp, format="PNG")


def plot_roc(path, fpr, tpr, auc):
    """Write the ROC curve (true vs false positive rate) with its AUC to a PNG file."""
    image, draw = _canvas(f"ROC curve (AUC = {auc:.4f})", "false positive rate", "true positive rate")
    _ticks(draw, 1.0, 1.0)
    draw.line(list(zip(*_to_pixels([0, 1], [0, 1], 1, 1))), fill=GREY)
    draw.line(list(zip(*_to_pixels(fpr, tpr, 1, 1))), fill=BLUE, width=2)
    _save(path, image)


def plot_distance_histogram(path, distances, same, threshold, bins=40):
    """Write overlaid histograms of the same-person and different-person distances, and the threshold line."""
    distances, same = np.asarray(distances), np.asarray(same, dtype=bool)
    xmax = max(2.0, float(distances.max()))
    edges = np.linspace(0, xmax, bins + 1)
    counts_same = np.histogram(distances[same], edges)[0]
    counts_diff = np.histogram(distances[~same], edges)[0]
    ymax = max(int(counts_same.max()), int(counts_diff.max()), 1) * 1.1
    image, draw = _canvas(f"distances: same person (blue), different (orange); threshold {threshold:.3f}",
                          "L2 distance between encodings", "pairs")
    _ticks(draw, xmax, ymax)
    for counts, colour in ((counts_diff, ORANGE), (counts_same, BLUE)):
        xs, ys = _to_pixels(np.repeat(edges, 2)[1:-1], np.repeat(counts, 2), xmax, ymax)
        draw.line(list(zip(xs, ys)), fill=colour, width=2)
    tx, _ = _to_pixels(threshold, 0, xmax, ymax)
    draw.line([tx, MARGIN // 2, tx, HEIGHT - MARGIN], fill=BLACK, width=1)
    _save(path, image)
