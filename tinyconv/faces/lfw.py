"""Labeled Faces in the Wild: the pairs of `pairs.txt` and the standard 10-fold verification protocol.

pairs.txt (View 2): a header "10\\t300", then 10 folds of 300 matched lines `name i j` followed by 300 mismatched
lines `name1 i name2 j`; image i of a person is `lfw-deepfunneled/<name>/<name>_<i:04d>.jpg`.

Protocol: for each fold k, the threshold that maximises accuracy on the 9 other folds is applied to fold k; the
result is the mean and standard deviation of the 10 fold accuracies. Two faces are called the same person when
their distance is below the threshold. ROC and AUC are over all pairs.
(Huang et al. 2007, LFW; Huang et al. NIPS 2012, deep funneling.)
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyconv.faces.thresholds import same_person


@dataclass
class Pairs:
    """The pairs of pairs.txt: image paths, whether each pair is the same person, and its fold (0..9)."""
    left: list
    right: list
    same: np.ndarray   # (P,) bool
    fold: np.ndarray   # (P,) int

    def __len__(self):
        return len(self.same)

    def subset(self, index):
        index = np.asarray(index)
        return Pairs([self.left[i] for i in index], [self.right[i] for i in index], self.same[index],
                     self.fold[index])

    def images(self):
        """Every image named by a pair, once, sorted."""
        return sorted(set(self.left) | set(self.right))


def image_path(lfw_dir, name, number):
    return Path(lfw_dir) / "lfw-deepfunneled" / name / f"{name}_{int(number):04d}.jpg"


def read_pairs(lfw_dir, per_fold=None):
    """Pairs of `<lfw_dir>/pairs.txt`. Bad lines: ValueError naming them.

    per_fold: keep only the first per_fold/2 matched and per_fold/2 mismatched pairs of each fold (a quick subset
    that keeps the 10-fold protocol), or None for all.
    """
    path = Path(lfw_dir) / "pairs.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no pairs.txt here (expected the LFW folder with lfw-deepfunneled/)")
    lines = path.read_text().splitlines()
    try:
        n_folds, n_each = (int(v) for v in lines[0].split())
    except (ValueError, IndexError):
        raise ValueError(f"{path}: line 1 should be '<folds> <pairs per class>', got {lines[:1]}") from None
    if len(lines) != 1 + 2 * n_folds * n_each:
        raise ValueError(f"{path}: expected {2 * n_folds * n_each} pair lines, found {len(lines) - 1}")
    left, right, same, fold = [], [], [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if len(fields) == 3:
            a, b = image_path(lfw_dir, fields[0], fields[1]), image_path(lfw_dir, fields[0], fields[2])
        elif len(fields) == 4:
            a, b = image_path(lfw_dir, fields[0], fields[1]), image_path(lfw_dir, fields[2], fields[3])
        else:
            raise ValueError(f"{path}:{number}: expected 'name i j' or 'name1 i name2 j', got {line!r}")
        k = (number - 2) // (2 * n_each)
        if (len(fields) == 3) != ((number - 2) % (2 * n_each) < n_each):
            raise ValueError(f"{path}:{number}: a {'matched' if len(fields) == 3 else 'mismatched'} pair where "
                             f"fold {k + 1} expects the other kind")
        left.append(str(a))
        right.append(str(b))
        same.append(len(fields) == 3)
        fold.append(k)
    pairs = Pairs(left, right, np.array(same), np.array(fold))
    if per_fold is None:
        return pairs
    if per_fold < 2:
        raise ValueError(f"the number of pairs per fold must be at least 2 (one matched and one mismatched pair), "
                         f"got {per_fold}")
    rank = (np.arange(len(pairs)) % (2 * n_each)) % n_each  # position among the fold's pairs of the same kind
    return pairs.subset(np.flatnonzero(rank < per_fold // 2))


def pair_distances(encodings, pairs):
    """L2 distance of each pair; `encodings` maps image path -> (128,) unit encoding."""
    return np.array([np.linalg.norm(encodings[a] - encodings[b]) for a, b in zip(pairs.left, pairs.right)])


def best_threshold(distances, same):
    """(threshold, accuracy) maximising the accuracy of "same person iff distance < threshold" on these pairs.

    Every distinct cut is tried: sorted distances d_1 <= ... <= d_n, thresholds between neighbours (and beyond
    both ends); ties keep the middle one of the best run so the threshold is not pressed against a sample.
    """
    order = np.argsort(distances, kind="stable")
    d, s = np.asarray(distances)[order], np.asarray(same)[order]
    # a threshold after the first i pairs calls those i "same": correct = same among them + different after them
    correct = np.concatenate([[0], np.cumsum(s)]) + np.concatenate([np.cumsum((~s)[::-1])[::-1], [0]])
    cuts = np.concatenate([[d[0] - 1e-3], (d[:-1] + d[1:]) / 2, [d[-1] + 1e-3]])
    valid = np.concatenate([[True], d[:-1] < d[1:], [True]])  # no cut between equal distances
    correct = np.where(valid, correct, -1)
    best = np.flatnonzero(correct == correct.max())
    i = best[len(best) // 2]
    return float(cuts[i]), float(correct[i] / len(d))


def threshold_at_false_accepts(distances, same, rate):
    """(threshold, true accept rate): the largest threshold that accepts at most `rate` of the different-person
    pairs (halfway between the last accepted and the first refused distance), and the share of same-person pairs
    it accepts."""
    distances, same = np.asarray(distances), np.asarray(same, dtype=bool)
    negatives = np.sort(distances[~same])
    if not len(negatives) or not same.any():
        raise ValueError("a false-accept threshold needs both same-person and different-person pairs")
    k = int(np.floor(rate * len(negatives)))  # different pairs allowed below the threshold
    threshold = negatives[0] if k == 0 else (negatives[k - 1] + negatives[min(k, len(negatives) - 1)]) / 2
    return float(threshold), float(np.mean(same_person(distances[same], threshold)))


def ten_fold(distances, same, fold):
    """The standard protocol: per fold, the threshold chosen on the other folds -> (accuracies, thresholds)."""
    distances, same, fold = np.asarray(distances), np.asarray(same, dtype=bool), np.asarray(fold)
    accuracies, thresholds = [], []
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        if not train.any():
            raise ValueError("the 10-fold protocol needs at least two folds")
        threshold, _ = best_threshold(distances[train], same[train])
        accuracies.append(np.mean(same_person(distances[test], threshold) == same[test]))
        thresholds.append(threshold)
    return np.array(accuracies), np.array(thresholds)


def roc_curve(distances, same):
    """(false positive rate, true positive rate) for every threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(distances, kind="stable")
    s = np.asarray(same, dtype=bool)[order]
    tpr = np.concatenate([[0.0], np.cumsum(s) / max(s.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(~s) / max((~s).sum(), 1)])
    return fpr, tpr


def auc(distances, same):
    """Area under the ROC curve = P(distance of a random same pair < that of a random different pair), ties 1/2."""
    distances, same = np.asarray(distances), np.asarray(same, dtype=bool)
    pos, neg = distances[same], np.sort(distances[~same])
    if not len(pos) or not len(neg):
        raise ValueError("AUC needs both same-person and different-person pairs")
    below = np.searchsorted(neg, pos, side="left")  # different pairs strictly closer than this same pair
    ties = np.searchsorted(neg, pos, side="right") - below
    return float(np.sum(len(neg) - below - ties + 0.5 * ties) / (len(pos) * len(neg)))
