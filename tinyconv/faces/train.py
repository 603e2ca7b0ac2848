"""Fine-tuning FaceNet with the triplet loss, as in the paper (Schroff et al. 2015, sections 3.1-3.2).

Each step draws a batch of `people` people with `images_per_person` images each, encodes the batch, and forms
triplets inside it: every (anchor, positive) pair of the same person gets a *semi-hard* negative, one chosen at
random among the negatives farther from the anchor than the positive but still inside the margin,

    ||a - p||^2 < ||a - n||^2 < ||a - p||^2 + alpha,

or, when no negative is semi-hard, the hardest negative that violates the margin (pairs whose every negative is
already beyond the margin add nothing to the loss and are skipped). The mean triplet loss of the batch is
back-propagated through the whole network and Adam updates the weights. Batch norm is frozen by default (its
moving statistics are used and its beta is not trained): batches of a few dozen faces are too small to
estimate the statistics of the big pretrained network.
"""
from pathlib import Path

import numpy as np

import tinyconv.functional as F
from tinyconv import Tensor, nn, optim, weights
from tinyconv.faces.preprocess import prepare_face
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS
from tinyconv.faces.triplet import triplet_loss
from tinyconv.progress import Progress


def people_images(lfw_dir, min_images=2, exclude=()):
    """name -> sorted image paths of every person in <lfw_dir>/lfw-deepfunneled with at least `min_images`."""
    root = Path(lfw_dir) / "lfw-deepfunneled"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected the LFW folder with lfw-deepfunneled/)")
    people = {}
    for person in sorted(root.iterdir()):
        images = sorted(str(p) for p in person.glob("*.jpg"))
        if person.name not in exclude and len(images) >= min_images:
            people[person.name] = images
    return people


def sample_batch(people, n_people, images_per_person, rng):
    """(image paths, labels) of `n_people` random people with up to `images_per_person` random images each."""
    if len(people) < 2:
        raise ValueError(f"triplets need at least 2 people with several images, found {len(people)}")
    names = rng.choice(sorted(people), size=min(n_people, len(people)), replace=False)
    paths, labels = [], []
    for label, name in enumerate(names):
        images = people[name]
        chosen = rng.choice(len(images), size=min(images_per_person, len(images)), replace=False)
        paths += [images[i] for i in chosen]
        labels += [label] * len(chosen)
    return paths, np.array(labels)


def select_triplets(embeddings, labels, alpha, rng):
    """Semi-hard triplets inside a batch -> (anchor, positive, negative) index arrays (see the module doc)."""
    sq = np.sum((embeddings[:, None, :] - embeddings[None, :, :]) ** 2, axis=-1)
    anchors, positives, negatives = [], [], []
    for a in range(len(labels)):
        others = np.flatnonzero(labels != labels[a])
        for p in np.flatnonzero(labels == labels[a]):
            if p == a:
                continue
            d_ap, d_an = sq[a, p], sq[a, others]
            semi_hard = others[(d_an > d_ap) & (d_an < d_ap + alpha)]
            violating = others[d_an < d_ap + alpha]
            if len(semi_hard):
                n = rng.choice(semi_hard)
            elif len(violating):
                n = others[np.argmin(d_an)]
            else:
                continue
            anchors.append(a)
            positives.append(p)
            negatives.append(n)
    return np.array(anchors, dtype=int), np.array(positives, dtype=int), np.array(negatives, dtype=int)


def encode_batch(model, x):
    """(N, 160, 160, 3) images -> (N, 128) unit encodings as a Tensor (differentiable)."""
    return F.l2_normalize(model(Tensor(x)), axis=-1)


def mean_triplet_loss(embeddings, triplets, alpha):
    """Mean triplet loss of `triplets` (index arrays into the rows of `embeddings`), a differentiable Tensor."""
    a, p, n = triplets
    return triplet_loss(None, (embeddings[a], embeddings[p], embeddings[n]), alpha) / len(a)


def set_training(model, freeze_bn=True):
    """Training mode (dropout on); with freeze_bn, batch norm layers stay in inference mode.

    Returns the parameters to train (the frozen batch norm betas have requires_grad=False: no gradient at all)."""
    model.train()
    if freeze_bn:
        for _, module in model.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval().requires_grad_(False)
    return model.trainable_parameters()


def train(model, people, steps=20, preprocess=DEFAULT_PREPROCESS, lr=1e-5, n_people=10, images_per_person=3,
          alpha=0.5, freeze_bn=True, seed=0):
    """Fine-tune `model` in place for `steps` steps of triplets drawn from `people` (name -> image paths).

    These defaults are also the command line's (`python -m tinyconv.faces train`). With detection, an image where
    no face is found is cut at its central box, as in `evaluate`; "-flip" is ignored here (the network learns from
    each face as it is; the augmentation is for encoding).
    alpha: the margin. The paper's 0.2 leaves the pretrained network almost nothing to learn from in small batches
    (on LFW, 40% of 10x3 batches have no triplet inside that margin; with 0.5, 12%), hence 0.5 by default.

    Prints one progress line per step on stderr (loss, triplets, time per step, ETA); returns the list of step
    losses (NaN where a batch had no triplet inside the margin). The model is left in inference mode.
    """
    rng = np.random.default_rng(seed)
    optimizer = optim.Adam(set_training(model, freeze_bn), lr=lr)
    losses = []
    progress = Progress(steps, "train", unit="steps", lines=True)
    for step in range(1, steps + 1):
        paths, labels = sample_batch(people, n_people, images_per_person, rng)
        x = np.stack([prepare_face(p, preprocess, fallback=True)[0] for p in paths])
        embeddings = encode_batch(model, x)
        triplets = select_triplets(embeddings.data, labels, alpha, rng)  # chosen on this very forward pass
        if not len(triplets[0]):
            losses.append(float("nan"))
            progress.update(1, "no triplet inside the margin, skipped")
            continue
        optimizer.zero_grad()
        loss = mean_triplet_loss(embeddings, triplets, alpha)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        progress.update(1, f"loss {loss.item():.4f} over {len(triplets[0])} triplets")
    model.eval()
    return losses


def save_fine_tuned(path, model, base_path, note):
    """Write the fine-tuned weights as a tinyconv weights file (atomically), keeping the base file's attributes."""
    attrs = weights.read_attrs(base_path)
    attrs["fine_tuned"] = note
    weights.save(path, model, attrs)
