"""The MTCNN cascade on real faces (the course's images, LFW), on a group photo composed here from LFW faces pasted
at known places, FaceNet's crop and choice of face, the similarity alignment, NMS, and bad input."""
import numpy as np
import pytest
from PIL import Image

from tinyconv.faces import Face, align, choose_face, detect_faces
from tinyconv.faces.detect import TEMPLATE_112, pyramid_scales, similarity_transform
from tinyconv.files import load_image
from tinyconv.kernels import crop_resize, nms

LFW_PEOPLE = ["Aaron_Eckhart", "Angelina_Jolie", "Serena_Williams", "Michael_Jordan", "Paula_Zahn",
              "Rudolph_Giuliani", "Craig_Wilson"]


@pytest.fixture(scope="module", autouse=True)
def mtcnn_weights(weights_file):
    return weights_file("mtcnn")


def lfw_image(shared, person):
    return load_image(shared / "data" / "faces" / "lfw" / "lfw-deepfunneled" / person / f"{person}_0001.jpg")


def assert_plausible_landmarks(face):
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = face.landmarks
    assert lex < rex and lmx < rmx                       # left eye left of right eye, same for the mouth corners
    assert max(ley, rey) < ny < min(lmy, rmy)            # eyes above the nose above the mouth
    x0, y0, x1, y1 = face.box
    assert np.all((face.landmarks >= [x0, y0]) & (face.landmarks <= [x1, y1]))   # all inside the box


@pytest.mark.parametrize("name", ["camera_0.jpg", "younes.jpg", "kian.jpg", "danielle.png"])
def test_one_face_in_each_course_image(shared, name):
    path = shared / "data" / "faces" / "coursera" / name
    faces = detect_faces(path)
    height, width = load_image(path).shape[:2]
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Face) and face.box.shape == (4,) and face.landmarks.shape == (5, 2)
    assert face.score > 0.9
    centre = (face.box[:2] + face.box[2:]) / 2
    assert np.all(np.abs(centre - [width / 2, height / 2]) < 0.2 * np.array([width, height]))
    assert_plausible_landmarks(face)


@pytest.mark.parametrize("person", LFW_PEOPLE[:4])
def test_one_face_in_lfw_images(shared, person):
    rgb = lfw_image(shared, person)
    faces = detect_faces(rgb)
    assert len(faces) == 1
    face = faces[0]
    centre = (face.box[:2] + face.box[2:]) / 2
    assert np.all(np.abs(centre - 125) < 30)            # deep-funneled: the face is in the middle of 250x250
    assert 70 < face.box[2] - face.box[0] < 160
    assert_plausible_landmarks(face)


def test_every_face_of_a_composed_group_photo_is_found(shared):
    """Seven LFW faces of different sizes pasted on a 800x600 canvas; each is found exactly once, where it was put."""
    rng = np.random.default_rng(0)
    canvas = np.full((600, 800, 3), 90, np.uint8) + rng.integers(0, 20, (600, 800, 3), dtype=np.uint8)
    places = [(20, 30, 150), (220, 60, 120), (400, 20, 180), (620, 40, 100), (60, 330, 90), (300, 300, 240),
              (600, 380, 130)]                                        # (left, top, side) of each pasted patch
    for person, (left, top, side) in zip(LFW_PEOPLE, places):
        patch = Image.fromarray(lfw_image(shared, person)[40:210, 40:210]).resize((side, side), Image.BILINEAR)
        canvas[top:top + side, left:left + side] = np.asarray(patch)
    faces = detect_faces(canvas)
    assert len(faces) == len(places)
    for left, top, side in places:
        inside = [f for f in faces if left <= (f.box[0] + f.box[2]) / 2 <= left + side
                  and top <= (f.box[1] + f.box[3]) / 2 <= top + side]
        assert len(inside) == 1, (left, top, side)
        x0, y0, x1, y1 = inside[0].box
        # the face covers the middle of the patch (170 px of the 250 px image around a ~100 px face)
        assert x0 < left + 0.45 * side and x1 > left + 0.55 * side and y0 < top + 0.45 * side and y1 > top + 0.6 * side
        assert 0.35 * side < x1 - x0 < 0.9 * side
        assert x0 > left - 0.1 * side and x1 < left + 1.1 * side and y0 > top - 0.1 * side and y1 < top + 1.1 * side
        assert_plausible_landmarks(inside[0])
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_align_is_facenets_crop(shared):
    rgb = lfw_image(shared, "Aaron_Eckhart")
    face = detect_faces(rgb)[0]
    crop = align(rgb, face)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    x0, y0, x1, y1 = face.box
    left, top, right, bottom = int(max(x0 - 16, 0)), int(max(y0 - 16, 0)), int(min(x1 + 16, 250)), int(min(y1 + 16, 250))
    expected = Image.fromarray(rgb[top:bottom, left:right]).resize((160, 160), Image.BILINEAR)
    np.testing.assert_array_equal(crop, np.asarray(expected))
    assert align(rgb, face, size=182, margin=44).shape == (182, 182, 3)
    edge = Face(box=np.array([-30.0, -30.0, 40.0, 40.0]), score=0.9, landmarks=np.zeros((5, 2)))
    assert align(rgb, edge).shape == (160, 160, 3)       # clipped to the image


def test_similarity_alignment_puts_the_landmarks_on_the_template(shared):
    rgb = lfw_image(shared, "Angelina_Jolie")
    face = detect_faces(rgb)[0]
    warped = align(rgb, face, size=112, similarity=True)
    assert warped.shape == (112, 112, 3) and warped.dtype == np.uint8
    transform = similarity_transform(face.landmarks, TEMPLATE_112)
    moved = face.landmarks @ transform[:, :2].T + transform[:, 2]
    np.testing.assert_allclose(moved, TEMPLATE_112, atol=8)          # the best fit of 5 points by 4 numbers
    again = detect_faces(np.asarray(Image.fromarray(warped).resize((224, 224), Image.BILINEAR)), min_face=40)
    assert len(again) == 1
    np.testing.assert_allclose(again[0].landmarks / 2, moved, atol=3)   # found again where they were put


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(1)
    points = rng.random((5, 2)) * 100
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points @ (scale * rotation).T + shift
    np.testing.assert_allclose(similarity_transform(points, moved), np.column_stack([scale * rotation, shift]),
                               atol=1e-10)


def test_choose_face_follows_facenet():
    def face(x0, y0, x1, y1):
        return Face(box=np.array([x0, y0, x1, y1], float), score=0.99, landmarks=np.zeros((5, 2)))
    central, big_corner, small = face(80, 80, 170, 170), face(0, 0, 120, 120), face(110, 110, 140, 140)
    # area - 2 * squared offset from the centre (125, 125): central 8100 - 0, small 900 - 0,
    # big_corner 14400 - 2 * (65^2 + 65^2) = -2500: the large face in the corner loses even to the small one
    assert choose_face([small, big_corner, central], (250, 250, 3)) is central
    assert choose_face([small, big_corner], (250, 250, 3)) is small
    with pytest.raises(ValueError, match="no faces"):
        choose_face([], (10, 10))


def test_nms_union_and_min():
    boxes = np.array([[0, 0, 9, 9, 0.9], [1, 1, 10, 10, 0.8], [20, 20, 29, 29, 0.7], [2, 2, 5, 5, 0.95]], float)
    # box 1 overlaps box 0 by 81/119 > 0.5; box 3 lies inside boxes 0 and 1: IoU 16/100, but Min-overlap 1
    np.testing.assert_array_equal(nms(boxes, 0.5, "union"), [3, 0, 2])
    np.testing.assert_array_equal(nms(boxes, 0.5, "min"), [3, 2])
    assert nms(np.empty((0, 5)), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="method"):
        nms(boxes, 0.5, "max")


def test_crop_resize_averages_areas_interpolates_and_pads_with_zeros():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    # shrinking 40x30 -> 17x11: the exact area mean, computed by repeating every pixel 17 x 11 times
    fine = image.astype(np.float64).repeat(17, 0).repeat(11, 1)
    np.testing.assert_allclose(crop_resize(image, [[0, 0, 40, 30]], 17, 11)[0],
                               fine.reshape(17, 40, 11, 30, 3).mean(axis=(1, 3)), atol=1e-3)
    # enlarging: bilinear between cell centres, as Pillow does (Pillow rounds to integers)
    pillow = np.asarray(Image.fromarray(image[5:15, 5:15]).resize((24, 24), Image.BILINEAR))
    np.testing.assert_allclose(crop_resize(image, [[5, 5, 10, 10]], 24, 24)[0], pillow, atol=1)
    # a box half outside the image: zeros there, the image's pixels where it is inside; several boxes at once
    both = crop_resize(image, [[-10, -10, 20, 20], [0, 0, 20, 20]], 20, 20)
    np.testing.assert_array_equal(both[0, 10:, 10:], image[:10, :10])
    assert not both[0, :10].any() and not both[0, :, :10].any()
    np.testing.assert_array_equal(both[1], image[:20, :20])
    # transpose=True: the same crops with their axes swapped, (n, width, height, C)
    crops = crop_resize(image, [[-3, 2, 40, 25], [5, 5, 10, 10]], 17, 11)
    np.testing.assert_array_equal(crop_resize(image, [[-3, 2, 40, 25], [5, 5, 10, 10]], 17, 11, transpose=True),
                                  crops.transpose(0, 2, 1, 3))


def test_pyramid_scales_are_sandbergs():
    scales = pyramid_scales(480, 640, 20, 0.709)
    assert scales[0] == 0.6 and np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert 480 * scales[-1] >= 12 > 480 * scales[-1] * 0.709
    assert pyramid_scales(19, 500, 20, 0.709) == []


def test_no_face_and_bad_input():
    assert detect_faces(np.zeros((1, 1, 3), np.uint8)) == []
    assert detect_faces(np.full((11, 300, 3), 200, np.uint8)) == []
    assert detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)):
        with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
            detect_faces(bad)
    image = np.zeros((30, 30, 3), np.uint8)
    for kwargs, message in (({"min_face": 0}, "min_face must be a positive"),
                            ({"thresholds": (0.6, 0.7)}, "thresholds must be three"),
                            ({"thresholds": (0.6, 1.0, 0.7)}, "thresholds must be three"),
                            ({"factor": 1.0}, "factor must be in"), ({"factor": 0}, "factor must be in")):
        with pytest.raises(ValueError, match=message):
            detect_faces(image, **kwargs)
    with pytest.raises(ValueError, match="nope.jpg: no such image file"):
        detect_faces("nope.jpg")
