"""The triplet loss of FaceNet (Schroff et al. 2015, eq. 1), as the course writes it.

For a triplet (anchor, positive = same person, negative = another person):

    loss = sum over the batch of max(||a - p||^2 - ||a - n||^2 + alpha, 0)

It is zero once every negative is at least `alpha` (squared distance) farther from its anchor than the positive.
"""
import numpy as np

import tinyconv.functional as F
from tinyconv import Tensor


def triplet_loss(y_true, y_pred, alpha=0.2):
    """y_true: ignored (Keras' signature; the course passes None). y_pred: (anchor, positive, negative), each (m, 128).

    Returns a Tensor (differentiable) when any input is a Tensor, else a float.
    """
    anchor, positive, negative = (t if isinstance(t, Tensor) else np.asarray(t, dtype=np.float64) for t in y_pred)
    pos_dist = F.sum((anchor - positive) ** 2, axis=-1)
    neg_dist = F.sum((anchor - negative) ** 2, axis=-1)
    loss = F.sum(F.maximum(pos_dist - neg_dist + alpha, 0.0))
    return loss if any(isinstance(t, Tensor) for t in y_pred) else loss.item()
