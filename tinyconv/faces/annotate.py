"""A group photo with each face's box, name and distance drawn on it (`identify --annotate OUT.jpg`)."""
import numpy as np
from PIL import Image, ImageDraw

from tinyconv.files import save_image

KNOWN, UNKNOWN, TEXT = (40, 200, 60), (230, 50, 40), (255, 255, 255)


def draw_faces(rgb, matches):
    """(H, W, 3) uint8 photo and a list of `recognition.Match` -> a copy with a box and "name distance" per face
    (green for a known person, red for unknown)."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(image)
    width = max(2, round(min(image.size) / 250))
    for match in matches:
        x0, y0, x1, y1 = (float(v) for v in match.box)
        colour = KNOWN if match.known else UNKNOWN
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        label = f"{match.nearest if match.known else 'unknown'} {match.distance:.3f}"
        left, top, right, bottom = draw.textbbox((0, 0), label)
        ty = y1 + 1 if y0 - (bottom - top) - 4 < 0 else y0 - (bottom - top) - 4
        draw.rectangle([x0, ty, x0 + right - left + 4, ty + bottom - top + 4], fill=colour)
        draw.text((x0 + 2 - left, ty + 2 - top), label, fill=TEXT)
    return np.asarray(image)


def annotate(path, rgb, matches):
    """Write `draw_faces(rgb, matches)` to `path` atomically (the format follows the suffix: .jpg, .png)."""
    save_image(path, draw_faces(rgb, matches))
