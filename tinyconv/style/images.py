"""The pictures of style transfer: sizes, resizing, colour transfer (the start), luminance-only transfer, and the
demo's images made in code.

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


def colour_moments(targets, weights=None):
    """(pixels, w, mean, covariance): the targets' pixels as (n_i, 3) float64 arrays, their weights (`weights`,
    default equal, scaled to sum to 1), and the mean and covariance of the mixture of their colours."""
    pixels = [np.asarray(t, np.float64).reshape(-1, 3) for t in targets]
    w = np.ones(len(pixels)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mean = sum(wi * p.mean(0) for wi, p in zip(w, pixels))
    second = sum(wi * (np.cov(p.T, bias=True) + np.outer(p.mean(0), p.mean(0))) for wi, p in zip(w, pixels))
    return pixels, w, mean, second - np.outer(mean, mean)


def match_colours(rgb, targets, weights=None):
    """rgb (H, W, 3) with the pixel colours of `targets` (a list of images, mixed by `weights`, default equal):
    the linear map x -> (x - mu) C^-1/2 T^1/2 + mu_T that gives its pixels the targets' mean mu_T and covariance T
    (C: rgb's covariance; symmetric square roots; Gatys et al. 2017's colour transfer, here towards the painting).
    Float, clipped to 0..255."""
    x = np.asarray(rgb, np.float64).reshape(-1, 3)
    _, _, mu_t, cov_t = colour_moments(targets, weights)

    def power(c, exponent):   # of a symmetric covariance; variances under 1 level^2 count as 1 (flat images)
        values, vectors = np.linalg.eigh(c)
        return (vectors * np.maximum(values, 1.0) ** exponent) @ vectors.T
    mapped = (x - x.mean(0)) @ power(np.cov(x.T, bias=True), -0.5) @ power(cov_t, 0.5)
    return np.clip(mapped + mu_t, 0, 255).reshape(np.shape(rgb))


def match_histograms(rgb, targets, weights=None):
    """`match_colours`, then the whole distribution: along each principal axis of the targets' colours (the
    eigenvectors of T), the mapped pixels' coordinates get the targets' distribution by quantile matching (a pixel
    of rank r among n, ties sharing their middle rank, takes the targets' (r + 1/2)/n quantile; the targets'
    pixels count with weight w_i / n_i). The linear map alone keeps the photo's shape of distribution: a painting's
    near-blacks and brightest yellows do not come through. Float (H, W, 3), clipped to 0..255."""
    x = match_colours(rgb, targets, weights).reshape(-1, 3)
    pixels, w, mu_t, cov_t = colour_moments(targets, weights)
    axes = np.linalg.eigh(cov_t)[1]
    source = (x - mu_t) @ axes
    target = np.concatenate([(p - mu_t) @ axes for p in pixels])
    mass = np.concatenate([np.full(len(p), wi / len(p)) for wi, p in zip(w, pixels)])
    out = np.empty_like(source)
    for c in range(3):
        order = np.argsort(target[:, c], kind="stable")
        values, cdf = target[order, c], np.cumsum(mass[order]) - mass[order] / 2
        ranked = np.sort(source[:, c])
        rank = (np.searchsorted(ranked, source[:, c], "left") + np.searchsorted(ranked, source[:, c], "right")) / 2
        out[:, c] = np.interp(rank / len(ranked), cdf, values)
    return np.clip(out @ axes.T + mu_t, 0, 255).reshape(np.shape(rgb))


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
