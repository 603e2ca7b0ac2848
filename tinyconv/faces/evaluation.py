"""`evaluate`: the LFW verification benchmark for a model and a preprocessing, end to end.

Encode every image named by pairs.txt (cached on disk), compute the distance of each pair, run the 10-fold
protocol, the ROC/AUC and the best overall threshold, and optionally draw the ROC curve and the histograms.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyconv.faces import lfw
from tinyconv.faces.cache import cached_encodings
from tinyconv.faces.plots import plot_distance_histogram, plot_roc
from tinyconv.faces.thresholds import COURSE_THRESHOLD, FALSE_ACCEPT_RATE, same_person


@dataclass
class Evaluation:
    preprocess: str
    pairs: int
    accuracy: float          # mean of the fold accuracies (0..1)
    accuracy_std: float      # their standard deviation
    fold_thresholds: np.ndarray
    auc: float
    threshold: float         # the best threshold over all pairs
    threshold_accuracy: float
    course_threshold_accuracy: float  # accuracy over all pairs with the course's 0.7
    strict_threshold: float  # the largest threshold with at most FALSE_ACCEPT_RATE of different pairs accepted
    strict_true_accepts: float  # the share of same-person pairs it accepts
    images: int = 0          # distinct images encoded
    no_face: tuple = ()      # images where the detector found no face (the central box was used instead)
    plots: tuple = ()

    def lines(self):
        """The report, one line per result."""
        folds = len(self.fold_thresholds)
        return [f"pairs: {self.pairs} in {folds} folds, preprocessing {self.preprocess}",
                f"accuracy: {100 * self.accuracy:.2f}% ± {100 * self.accuracy_std:.2f} "
                f"({folds}-fold, threshold chosen on the other folds)",
                f"AUC: {self.auc:.4f}",
                f"best threshold: {self.threshold:.3f} (accuracy {100 * self.threshold_accuracy:.2f}% over all pairs;"
                f" per-fold thresholds {self.fold_thresholds.min():.3f}..{self.fold_thresholds.max():.3f})",
                f"with the course's threshold {COURSE_THRESHOLD}: {100 * self.course_threshold_accuracy:.2f}%",
                f"strict threshold: {self.strict_threshold:.3f} (at most {100 * FALSE_ACCEPT_RATE:g}% of different "
                f"pairs accepted; {100 * self.strict_true_accepts:.2f}% of same pairs accepted)",
                f"faces found: {self.images - len(self.no_face)} of {self.images} images "
                f"({100 * (1 - len(self.no_face) / max(self.images, 1)):.2f}%; the others use the central box)",
                *(f"no face found: {p}" for p in self.no_face),
                *(f"wrote {p}" for p in self.plots)]


def evaluate(model, lfw_dir, preprocess, per_fold=None, out_dir=None, cache_folder=None):
    """Run the LFW protocol (on `per_fold` pairs of each fold if given, else all 6,000).

    With detection, each image's face is FaceNet's choice among those found; an image where no face is found is
    encoded from its central box (`preprocess.FALLBACK_CROP`) and listed in `no_face`.
    out_dir: where to write roc-<preprocess>.png and distances-<preprocess>.png (None: no plots).
    """
    pairs = lfw.read_pairs(lfw_dir, per_fold)
    missing = [p for p in pairs.images() if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: image named by pairs.txt is missing ({len(missing)} in all)")
    encodings, found = cached_encodings(model, pairs.images(), preprocess, cache_folder)
    distances = lfw.pair_distances(encodings, pairs)
    accuracies, fold_thresholds = lfw.ten_fold(distances, pairs.same, pairs.fold)
    threshold, threshold_accuracy = lfw.best_threshold(distances, pairs.same)
    area = lfw.auc(distances, pairs.same)
    strict = lfw.threshold_at_false_accepts(distances, pairs.same, FALSE_ACCEPT_RATE)
    plots = ()
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        plots = (out_dir / f"roc-{preprocess}.png", out_dir / f"distances-{preprocess}.png")
        plot_roc(plots[0], *lfw.roc_curve(distances, pairs.same), area)
        plot_distance_histogram(plots[1], distances, pairs.same, threshold)
    return Evaluation(preprocess, len(pairs), float(accuracies.mean()), float(accuracies.std()), fold_thresholds,
                      area, threshold, threshold_accuracy,
                      float(np.mean(same_person(distances, COURSE_THRESHOLD) == pairs.same)), *strict, len(found),
                      tuple(p for p, ok in found.items() if not ok), plots)
