"""Fine-tuning with the triplet loss: semi-hard selection, the loss falling on real faces, saving the result."""
import numpy as np

from tinyconv import no_grad, optim, weights
from tinyconv.faces.preprocess import load_face
from tinyconv.faces.train import (encode_batch, people_images, sample_batch, save_fine_tuned, select_triplets,
                                  set_training, mean_triplet_loss)
from tinyconv.models.facenet import facenet


def test_semi_hard_selection():
    # 1-d "encodings": person 0 at 0.0 and 0.3; person 1 at 0.5 (semi-hard for anchor 0: 0.09 < 0.25 < 0.29)
    # and person 2 at 0.2 (hard: closer than the positive) and 1.5 (easy).
    e = np.array([[0.0], [0.3], [0.5], [0.2], [1.5]])
    labels = np.array([0, 0, 1, 2, 2])
    a, p, n = select_triplets(e, labels, alpha=0.2, rng=np.random.default_rng(0))
    by_anchor = {(i, j): k for i, j, k in zip(a, p, n)}
    assert by_anchor[(0, 1)] == 2                  # the semi-hard one, not the hard 3 nor the easy 4
    # anchor 1 (0.3), positive 0: d_ap^2 = 0.09; negatives 0.04 (hard), 0.01 (hard), 1.44: none semi-hard,
    # so the hardest (closest) negative, 3 at 0.2
    assert by_anchor[(1, 0)] == 3
    # person 2: anchor 3 (0.2), positive 4 (1.5): d_ap^2 = 1.69, every negative violates the margin; 4 -> 3 too
    assert set(zip(a, p)) == {(0, 1), (1, 0), (3, 4), (4, 3)}
    assert all(labels[i] == labels[j] != labels[k] for i, j, k in zip(a, p, n))


def test_people_and_batches(shared):
    folder = shared / "data" / "faces" / "lfw"
    people = people_images(folder, min_images=10, exclude={"George_W_Bush"})
    assert "Andre_Agassi" in people and "George_W_Bush" not in people
    assert all(len(v) >= 10 for v in people.values())
    paths, labels = sample_batch(people, 3, 2, np.random.default_rng(0))
    assert len(paths) == 6 and list(labels) == [0, 0, 1, 1, 2, 2]
    assert paths[0].split("/")[-2] == paths[1].split("/")[-2] != paths[2].split("/")[-2]


def test_loss_falls_on_a_fixed_batch_of_real_faces_and_saves(shared, weights_file, tmp_path):
    base = weights_file("facenet")
    model = facenet(base)
    people = people_images(shared / "data" / "faces" / "lfw", min_images=8)
    paths, labels = sample_batch(people, 3, 2, np.random.default_rng(3))
    x = np.stack([load_face(p, "standardize-crop150") for p in paths])
    a = np.arange(0, 6, 2)
    triplets = (np.r_[a, a + 1], np.r_[a + 1, a], np.r_[(a + 2) % 6, (a + 3) % 6])  # every pair, a fixed negative

    def loss():
        with no_grad():
            return mean_triplet_loss(encode_batch(model.eval(), x), triplets, alpha=1.0).item()

    before = loss()
    optimizer = optim.Adam(set_training(model), lr=1e-4)
    bn = model.named_parameters()["Conv2d_1a_3x3_BatchNorm/beta"]
    bn_before = bn.data.copy()
    for _ in range(3):
        optimizer.zero_grad()
        mean_triplet_loss(encode_batch(model, x), triplets, alpha=1.0).backward()
        optimizer.step()
    assert not model.block35[0].branch_0.bn.training and model.training  # batch norm frozen, dropout on
    after = loss()
    assert after < 0.8 * before
    np.testing.assert_array_equal(bn.data, bn_before)
    assert not bn.requires_grad and bn.grad is None   # frozen: no gradient computed or accumulated

    out = tmp_path / "tuned.h5"
    save_fine_tuned(out, model, base, "test")
    assert weights.read_attrs(out)["fine_tuned"] == "test"
    reloaded = facenet(out)
    np.testing.assert_array_equal(reloaded.state_dict()["Block17_3_Conv2d_1x1/kernel"],
                                  model.state_dict()["Block17_3_Conv2d_1x1/kernel"])
