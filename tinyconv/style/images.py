"""The pictures of style transfer: sizes, resizing, luminance-only transfer, and the demo's images made in code.

Images here are RGB arrays (H, W, 3), uint8 or float in 0..255; the network's input convention is the model's
business (`VGG.preprocess`).
"""
import numpy as np
from PIL import Image


def fit_longest(height, width, size):
    """(height, width) scaled so that the longest side is `size` pixels, keeping the aspect ratio."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(rgb, height, width):
    """An (H, W, 3) image (uint8, or float: clipped to 0..255 and rounded) resized to height x width (Lanczos)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.LANCZOS))


def transfer_luminance(content_rgb, styled_rgb):
    """The styled image's luminance with the content's colours (YIQ: Y from `styled`, I and Q from `content`)."""
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    y = styled_rgb.astype(np.float64) @ to_yiq[0]
    iq = content_rgb.astype(np.float64) @ to_yiq[1:].T
    return np.concatenate([y[..., None], iq], axis=-1) @ np.linalg.inv(to_yiq).T


def demo_images(height=96, width=128):
    """A content picture (sky, sun, hills, a house) and a style picture (yellow swirls on blue), made in code."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    content = np.empty((height, width, 3))
    content[:] = np.stack([120 + 100 * y, 170 + 60 * y, 250 - 20 * y], axis=-1)               # sky
    content[(x - 0.78) ** 2 + (y - 0.2) ** 2 * (height / width) ** -2 < 0.008] = (255, 220, 90)  # sun
    hills = y > 0.62 + 0.08 * np.sin(6 * x)
    content[hills] = np.stack([60 + 40 * y, 150 - 30 * y, 60 + 0 * y], axis=-1)[hills]
    content[(x > 0.22) & (x < 0.45) & (y > 0.5) & (y < 0.8)] = (200, 80, 60)                 # house
    content[(y > 0.3) & (y <= 0.5) & (np.abs(x - 0.335) < (y - 0.3) * 0.8)] = (110, 50, 40)   # roof
    content[(x > 0.3) & (x < 0.36) & (y > 0.62) & (y < 0.8)] = (70, 40, 30)                   # door
    angle = np.arctan2(y - 0.5, x - 0.5) + 5 * np.hypot(x - 0.5, y - 0.5)                  # a swirl
    t = (0.5 + 0.5 * np.sin(6 * angle + 2 * np.sin(7 * y)))[..., None]
    style = t * np.array([240, 200, 60]) + (1 - t) * np.array([30, 50, 140])                # yellow on blue
    style += 30 * np.sin(45 * (x - y) + 8 * angle)[..., None]                               # brush strokes
    return [np.clip(a, 0, 255).astype(np.uint8) for a in (content, style)]
