"""LFW: pairs.txt, the 10-fold protocol and ROC/AUC on synthetic distances, plots, and a small real evaluation."""
import numpy as np
import pytest
from PIL import Image

from tinyconv.faces import lfw
from tinyconv.faces.evaluation import evaluate
from tinyconv.faces.plots import plot_distance_histogram, plot_roc
from tinyconv.models.facenet import facenet


def test_best_threshold_is_the_exact_optimum():
    rng = np.random.default_rng(0)
    d = rng.random(200) * 2
    same = rng.random(200) < 0.5 + 0.4 * (d < 1)  # mostly same below 1
    threshold, accuracy = lfw.best_threshold(d, same)
    brute = max(np.mean((d < t) == same) for t in np.concatenate([d, d + 1e-9, [0, 3]]))
    assert accuracy == pytest.approx(brute)
    assert np.mean((d < threshold) == same) == pytest.approx(accuracy)


def test_ten_fold_chooses_each_threshold_on_the_other_folds():
    # fold k's pairs are separable at 1.0, except fold 3 whose same pairs all sit at 1.5: the other folds cannot
    # know that, so fold 3 scores 50% while every other fold scores 100%.
    same = np.tile([True] * 5 + [False] * 5, 10)
    fold = np.repeat(np.arange(10), 10)
    d = np.where(same, 0.5, 1.9)
    d[(fold == 3) & same] = 1.5
    accuracies, thresholds = lfw.ten_fold(d, same, fold)
    np.testing.assert_allclose(accuracies, [1, 1, 1, .5, 1, 1, 1, 1, 1, 1])
    assert all(0.5 < t < 1.9 for t in thresholds)
    assert thresholds[3] < 1.5


def test_strict_threshold_accepts_at_most_the_given_share_of_strangers():
    rng = np.random.default_rng(3)
    same = rng.random(2000) < 0.5
    d = np.where(same, rng.normal(0.7, 0.2, 2000), rng.normal(1.4, 0.2, 2000))
    for rate in [0.0, 0.001, 0.01, 0.1]:
        threshold, true_accepts = lfw.threshold_at_false_accepts(d, same, rate)
        strangers = d[~same]
        assert np.mean(strangers < threshold) <= rate
        assert np.mean(strangers <= strangers[strangers >= threshold].min()) > rate  # one more would be too many
        assert true_accepts == np.mean(d[same] < threshold)


def test_auc_and_roc():
    rng = np.random.default_rng(1)
    d, same = rng.random(300), rng.random(300) < 0.5
    pos, neg = d[same], d[~same]
    brute = np.mean(pos[:, None] < neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :])
    assert lfw.auc(d, same) == pytest.approx(brute)
    fpr, tpr = lfw.roc_curve(d, same)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(brute)
    assert lfw.auc(np.r_[0.1, 0.2, 0.8, 0.9], np.r_[True, True, False, False]) == 1.0


def test_pairs_file(shared):
    pairs = lfw.read_pairs(shared / "data" / "faces" / "lfw")
    assert len(pairs) == 6000 and pairs.same.sum() == 3000
    assert np.all(np.bincount(pairs.fold) == 600)
    assert pairs.left[0].endswith("lfw-deepfunneled/Abel_Pacheco/Abel_Pacheco_0001.jpg")
    assert pairs.right[0].endswith("Abel_Pacheco_0004.jpg")
    assert len(pairs.images()) == 7701
    subset = lfw.read_pairs(shared / "data" / "faces" / "lfw", per_fold=4)
    assert len(subset) == 40 and np.all(np.bincount(subset.fold) == 4) and subset.same.sum() == 20


def test_bad_pairs_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no pairs.txt"):
        lfw.read_pairs(tmp_path)
    (tmp_path / "pairs.txt").write_text("1\t1\nA\t1\t2\nB\t1\n")
    with pytest.raises(ValueError, match=r"pairs.txt:3: expected 'name i j'"):
        lfw.read_pairs(tmp_path)


def test_plots_are_png_images(tmp_path):
    rng = np.random.default_rng(2)
    d, same = rng.random(100) * 2, rng.random(100) < 0.5
    plot_roc(tmp_path / "roc.png", *lfw.roc_curve(d, same), lfw.auc(d, same))
    plot_distance_histogram(tmp_path / "hist.png", d, same, 1.1)
    for name in ["roc.png", "hist.png"]:
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.size == (640, 480)


class CountingModel:
    """Wraps a model and counts the images it encodes (to see the cache work)."""

    def __init__(self, model):
        self.model, self.images = model, 0

    def __call__(self, x):
        self.images += len(x.data)
        return self.model(x)

    def state_dict(self):
        return self.model.state_dict()


def test_small_real_evaluation_and_its_cache(shared, weights_file, tmp_path):
    model = CountingModel(facenet(weights_file("facenet")))
    folder = shared / "data" / "faces" / "lfw"
    result = evaluate(model, folder, "standardize-crop150", per_fold=2, out_dir=tmp_path, cache_folder=tmp_path)
    assert result.pairs == 20 and model.images == 40
    assert result.accuracy >= 0.9 and result.auc >= 0.95
    assert 0.8 < result.threshold < 1.4
    assert any("accuracy: " in line and "% ± " in line for line in result.lines())
    assert all(p.is_file() for p in result.plots)
    again = evaluate(model, folder, "standardize-crop150", per_fold=2, cache_folder=tmp_path)
    assert model.images == 40 and again.accuracy == result.accuracy  # all from the cache
