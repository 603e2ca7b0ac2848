"""The course's face functions: triplet loss, preprocessing, encodings, verify / who_is_it, the face database."""
import h5py
import numpy as np
import pytest
from PIL import Image

import tinyconv.functional as F
from tinyconv import Tensor, no_grad
from tinyconv.faces import FaceDatabase, encode, img_to_encoding, triplet_loss, verify, who_is_it
from tinyconv.faces.annotate import UNKNOWN, draw_faces
from tinyconv.faces.encoding import encode_views, model_fingerprint
from tinyconv.faces.detect import detect_faces
from tinyconv.faces.preprocess import detect, load_face, parse_preprocessing, prewhiten
from tinyconv.faces.recognition import identify
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS, default_threshold
from tinyconv.files import load_image
from tinyconv.models.facenet import facenet

COURSE_DATABASE = ["danielle", "younes", "tian", "andrew", "kian", "dan", "sebastiano", "bertrand", "kevin", "felix",
                   "benoit", "arnaud"]


# ----- triplet loss -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture, published", [("face_tf2_triplet.npz", 527.2598), ("face_tf1_triplet.npz", 528.143)])
def test_triplet_loss_reproduces_the_course_unit_tests(shared, fixture, published):
    data = np.load(shared / "data" / "fixtures" / fixture)
    y_pred = (data["anchor"], data["positive"], data["negative"])
    assert triplet_loss(None, y_pred) == pytest.approx(published, rel=1e-4)


@pytest.mark.parametrize("a, p, n, alpha, expected", [
    ([[1, 1]], [[1, 1]], [[1, 1]], 5, 5), ([[1, 1]], [[1, 1]], [[0, 0]], 3, 1), ([[1, 1]], [[0, 0]], [[1, 1]], 0, 2),
    ([[0, 0]], [[0, 0]], [[0, 0]], -2, 0), ([[1, 0], [1, 0]], [[1, 0], [1, 0]], [[0, 1], [0, 1]], 3, 2),
    ([[1, 1], [2, 0]], [[0, 3], [1, 1]], [[1, 0], [0, 1]], 1, 5)])
def test_triplet_loss_hand_made_cases_of_the_course(a, p, n, alpha, expected):
    assert triplet_loss(None, (a, p, n), alpha) == pytest.approx(expected)


def test_triplet_loss_on_tensors_is_differentiable():
    rng = np.random.default_rng(0)
    a, p, n = (Tensor(rng.normal(size=(4, 8)), requires_grad=True) for _ in range(3))
    loss = triplet_loss(None, (a, p, n), alpha=3.0)
    assert isinstance(loss, Tensor)
    loss.backward()
    active = (np.sum((a.data - p.data) ** 2, 1) - np.sum((a.data - n.data) ** 2, 1) + 3.0 > 0)[:, None]
    np.testing.assert_allclose(a.grad, active * 2 * (n.data - p.data))
    np.testing.assert_allclose(p.grad, active * -2 * (a.data - p.data))
    np.testing.assert_allclose(n.grad, active * 2 * (a.data - n.data))


# ----- preprocessing ----------------------------------------------------------------------------------------------
def test_preprocessing_names():
    assert parse_preprocessing("course") == ("course", None, False)
    assert parse_preprocessing("standardize-crop150") == ("standardize", 150, False)
    assert parse_preprocessing("mtcnn") == ("mtcnn", None, False)
    assert parse_preprocessing("mtcnn-flip") == ("mtcnn", None, True)
    assert parse_preprocessing("standardize-crop150-flip") == ("standardize", 150, True)
    for bad in ["", "whiten", "course-crop", "course-crop0", "standardize-crop-5", "standardize-crop1.5",
                "mtcnn-crop150", "flip", "mtcnn-flip-crop150", "mtcnn-flip-flip"]:
        with pytest.raises(ValueError, match="unknown preprocessing"):
            parse_preprocessing(bad)


def test_course_preprocessing_is_nearest_resize_and_divide_by_255(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (96, 96, 4), dtype=np.uint8)
    path = tmp_path / "face.png"
    Image.fromarray(rgba, "RGBA").save(path)
    expected = np.asarray(Image.fromarray(rgba[..., :3]).resize((160, 160), Image.NEAREST)) / 255.0
    np.testing.assert_allclose(load_face(path, "course"), expected, atol=1e-7)


def test_standardize_and_crop():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)
    x = load_face(rgb, "standardize-crop160")
    np.testing.assert_allclose(x, prewhiten(rgb[45:205, 45:205]), atol=1e-5)
    assert abs(x.mean()) < 1e-5 and x.std() == pytest.approx(1, abs=1e-4)
    assert load_face(rgb, "standardize-crop150").shape == (160, 160, 3)
    flat = prewhiten(np.full((4, 4, 3), 7.0))  # std 0: floored at 1/sqrt(48), no division by zero
    assert np.all(flat == 0)
    small = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)  # a crop larger than the image keeps it whole
    np.testing.assert_array_equal(load_face(small, "course-crop150"), load_face(small, "course"))


def test_unreadable_image_is_a_clear_error(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="notes.jpg: not a readable image"):
        load_face(tmp_path / "notes.jpg")
    with pytest.raises(ValueError, match="missing.jpg: no such image file"):
        load_face(tmp_path / "missing.jpg")


# ----- a fake model for the database: fast, no weights needed -----------------------------------------------------
class PixelModel:
    """(N, 160, 160, 3) -> the first 128 pixel values of each image plus `offset`: distinct images, distinct codes."""

    def __init__(self, offset=0.0):
        self.offset = np.float32(offset)

    def __call__(self, x):
        return Tensor(x.data.reshape(len(x.data), -1)[:, :128] + self.offset + 1.0)

    def state_dict(self):
        return {"Pixel/bias": np.array([self.offset])}


def random_images(n, seed):
    return list(np.random.default_rng(seed).integers(0, 256, (n, 120, 120, 3), dtype=np.uint8))


def test_database_enrol_persist_and_reopen(tmp_path):
    path, model = tmp_path / "faces.h5", PixelModel()
    db = FaceDatabase(path)
    assert len(db) == 0 and not path.exists()
    ann, bob = random_images(3, 0), random_images(1, 1)
    db.enroll("ann", ann[:2], model, "course")
    db.enroll("ann", ann[2:], model)   # a third image of the same person
    db.enroll("bob", bob, model)       # one-shot
    again = FaceDatabase(path)
    assert again.names() == ["ann", "bob"]
    assert again["ann"].shape == (3, 128) and again["bob"].shape == (1, 128)
    assert again.model == model_fingerprint(model) and again.preprocess == "course"
    np.testing.assert_allclose(again["bob"][0], encode(model, bob, "course")[0])
    dist, door_open = verify(bob[0], "bob", again, model)
    assert dist == pytest.approx(0, abs=1e-6) and door_open
    assert who_is_it(ann[1], again, model)[1] == "ann"
    again.remove("bob")
    assert FaceDatabase(path).names() == ["ann"]


def test_database_refuses_another_model_or_preprocessing(tmp_path):
    path = tmp_path / "faces.h5"
    db = FaceDatabase(path)
    db.enroll("ann", random_images(1, 0), PixelModel(), "course")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="another model"):
        db.enroll("bob", random_images(1, 1), PixelModel(offset=0.5))
    with pytest.raises(ValueError, match="preprocessing 'course', not 'standardize'"):
        db.enroll("bob", random_images(1, 1), PixelModel(), "standardize")
    with pytest.raises(ValueError, match="another model"):
        verify(random_images(1, 2)[0], "ann", db, PixelModel(offset=0.5))
    assert path.read_bytes() == before and FaceDatabase(path).names() == ["ann"]


def test_flip_is_the_normalised_mean_of_the_face_and_its_mirror():
    model, images = PixelModel(), random_images(3, 5)
    both, plain, found = encode_views(model, images, "course-flip")
    np.testing.assert_allclose(plain, encode(model, images, "course"))
    mirror = encode(model, [image[:, ::-1] for image in images], "course")
    expected = (plain + mirror) / np.linalg.norm(plain + mirror, axis=1, keepdims=True)
    np.testing.assert_allclose(both, expected, atol=1e-6)
    assert found.all()


def test_one_decision_rule_distance_below_threshold(tmp_path, capsys):
    db, model, ann = FaceDatabase(tmp_path / "faces.h5"), PixelModel(), random_images(1, 0)
    db.enroll("ann", ann, model, "course")
    assert verify(ann[0], "ann", db, model, threshold=1e-3) == (0.0, True)
    assert verify(ann[0], "ann", db, model, threshold=0.0) == (0.0, False)  # equal is not below
    assert who_is_it(ann[0], db, model, threshold=0.0) == (0.0, "ann")
    assert capsys.readouterr().out.splitlines() == ["It's ann, welcome in!", "It's not ann, please go away",
                                                    "Not in the database."]


def test_identify_without_detection_reports_the_central_box(tmp_path):
    db, model, (ann, bob) = FaceDatabase(tmp_path / "faces.h5"), PixelModel(), random_images(2, 3)
    db.enroll("ann", [ann], model, "standardize-crop100")
    (match,) = identify(ann, db, model)
    assert match.nearest == "ann" and match.known and match.distance == pytest.approx(0, abs=1e-6)
    np.testing.assert_array_equal(match.box, [10, 10, 110, 110])  # the central 100 px of 120
    (match,) = identify(bob, db, model, threshold=1e-3)
    assert match.nearest == "ann" and not match.known
    drawn = draw_faces(bob, [match])
    assert drawn.shape == bob.shape and np.all(drawn[10, 10:110] == UNKNOWN)  # the red box's top edge
    np.testing.assert_array_equal(drawn[50:60, 50:60], bob[50:60, 50:60])   # inside the box: the photo


def test_database_update_is_atomic(tmp_path, monkeypatch):
    path, model = tmp_path / "faces.h5", PixelModel()
    FaceDatabase(path).enroll("ann", random_images(1, 0), model, "course")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(h5py.Group, "create_dataset", crash)
    with pytest.raises(OSError, match="simulated"):
        FaceDatabase(path).enroll("bob", random_images(1, 1), model)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert FaceDatabase(path).names() == ["ann"]
    assert [p.name for p in tmp_path.iterdir()] == ["faces.h5"]  # no temporary file left behind


def test_database_errors(tmp_path):
    db = FaceDatabase(tmp_path / "faces.h5")
    with pytest.raises(ValueError, match="database is empty"):
        who_is_it(random_images(1, 0)[0], db, PixelModel())
    with pytest.raises(ValueError, match="no one named 'zoe'"):
        verify(random_images(1, 0)[0], "zoe", {"ann": np.zeros(128)}, PixelModel())
    with pytest.raises(ValueError, match="invalid name"):
        db.enroll("a/b", random_images(1, 0), PixelModel())
    with pytest.raises(ValueError, match="not a readable image"):
        (tmp_path / "x.jpg").write_bytes(b"\x00" * 10)
        db.enroll("ann", [tmp_path / "x.jpg"], PixelModel())
    assert not (tmp_path / "faces.h5").exists()
    (tmp_path / "other.h5").write_text("hello")
    with pytest.raises(ValueError, match="not a readable HDF5 face database"):
        FaceDatabase(tmp_path / "other.h5")


# ----- the course's numbers, with the real network and the course's preprocessing asked for by name --------------
@pytest.fixture(scope="module")
def course(shared, weights_file):
    folder = shared / "data" / "faces" / "coursera"
    model = facenet(weights_file("facenet"))
    images = {name: folder / f"{name}.{'png' if name == 'danielle' else 'jpg'}" for name in COURSE_DATABASE}
    database = dict(zip(images, encode(model, images.values(), "course")))
    return model, database, folder


def test_course_database_encodings_are_unit_vectors(course):
    model, database, folder = course
    younes = img_to_encoding(folder / "younes.jpg", model, "course")
    assert younes.shape == (128,) and younes.dtype == np.float32
    assert np.linalg.norm(younes) == pytest.approx(1, abs=1e-6)
    np.testing.assert_allclose(younes, database["younes"], atol=1e-5)  # batch of 12 == one at a time


def test_course_verify_decisions(course, capsys):
    model, database, folder = course
    dist, door_open = verify(folder / "camera_0.jpg", "younes", database, model, preprocess="course")
    assert door_open and dist == pytest.approx(0.6020, abs=2e-3)
    assert capsys.readouterr().out == "It's younes, welcome in!\n"
    dist, door_open = verify(folder / "camera_2.jpg", "kian", database, model, preprocess="course")
    assert not door_open and dist == pytest.approx(1.0130, abs=2e-3)
    assert capsys.readouterr().out == "It's not kian, please go away\n"


def test_course_who_is_it(course, capsys):
    model, database, folder = course
    dist, identity = who_is_it(folder / "camera_0.jpg", database, model, preprocess="course")
    assert identity == "younes" and dist == pytest.approx(0.6020, abs=2e-3)
    assert capsys.readouterr().out.startswith("it's younes, the distance is 0.60")
    dist, identity = who_is_it(folder / "younes.jpg", database, model, preprocess="course")
    assert identity == "younes" and dist == pytest.approx(0, abs=1e-6)
    dist, identity = who_is_it(folder / "camera_0.jpg", database, model, threshold=0.5, preprocess="course")
    assert capsys.readouterr().out.endswith("Not in the database.\n")


def test_l2_normalize_matches_encode(course):
    model, database, folder = course
    x = load_face(folder / "kian.jpg", "course")[None]
    with no_grad():
        y = F.l2_normalize(model(Tensor(x)), axis=-1).data[0]
    np.testing.assert_allclose(y, database["kian"], atol=1e-5)


# ----- the course's images under the default preprocessing (detection), as a new user calls the API --------------
@pytest.fixture(scope="module")
def course_default(shared, weights_file):
    weights_file("mtcnn")
    folder = shared / "data" / "faces" / "coursera"
    model = facenet(weights_file("facenet"))
    return model, {name: img_to_encoding(folder / f"{name}.jpg", model) for name in ["younes", "kian"]}, folder


def test_course_decisions_under_the_default_preprocessing(course_default, capsys):
    model, database, folder = course_default
    threshold = default_threshold(DEFAULT_PREPROCESS)
    dist, door_open = verify(folder / "camera_0.jpg", "younes", database, model)
    assert door_open and dist < threshold
    for camera in range(1, 5):
        dist, door_open = verify(folder / f"camera_{camera}.jpg", "kian", database, model)
        assert not door_open and dist >= threshold, camera
    assert who_is_it(folder / "camera_0.jpg", database, model)[1] == "younes"
    assert capsys.readouterr().out.splitlines()[0] == "It's younes, welcome in!"


def test_an_image_without_a_face_is_a_clear_error(course_default, tmp_path):
    model, database, _ = course_default
    for name, pixels in [("uniform.png", np.full((200, 200, 3), 128, np.uint8)),
                         ("tiny.png", np.zeros((1, 1, 3), np.uint8))]:
        Image.fromarray(pixels).save(tmp_path / name)
        with pytest.raises(ValueError, match=f"{name}: no face found"):
            img_to_encoding(tmp_path / name, model)
        with pytest.raises(ValueError, match=f"{name}: no face found"):
            verify(tmp_path / name, "younes", database, model)


def test_tight_crops_are_found_after_padding(shared, course_default):
    # the central 64 px of a deep-funneled LFW image: the face fills the frame and MTCNN alone misses it
    lfw = shared / "data" / "faces" / "lfw" / "lfw-deepfunneled"
    rgb = load_image(lfw / "Dale_Bosworth" / "Dale_Bosworth_0001.jpg")
    tight = np.ascontiguousarray(rgb[93:157, 93:157])
    assert detect_faces(tight) == []
    (face,) = detect(tight)
    x0, y0, x1, y1 = face.box
    assert x0 < 24 < 40 < x1 and y0 < 24 < 40 < y1 and 48 < x1 - x0 < 160  # the face around the crop's centre
    both, _, found = encode_views(course_default[0], [tight, np.full((64, 64, 3), 9, np.uint8)], fallback=True)
    assert list(found) == [True, False]  # evaluate's fallback: the uniform image is cut at its centre, and counted
