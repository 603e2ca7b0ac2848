"""Face verification (1:1, "is this person who they claim to be?") and recognition (1:K, "who is this?").

`database` is either the course's plain dict (name -> one encoding, made by `img_to_encoding` with the same
preprocessing) or a `FaceDatabase` (name -> one or more encodings, with the model and preprocessing that made
them). A person's distance is the smallest distance from a face's encoding to any of their stored encodings
(verify, 1:1: a direct product with that person's few encodings; who_is_it and identify, 1:K: the nearest named
face, found by `search.FaceSearch`, exact or HNSW beyond its measured switch point), and the decision is
`thresholds.same_person`: distance < threshold. The threshold defaults to the one calibrated for
the preprocessing (`thresholds.default_threshold`: 0.7 for the course's). A photo may hold several faces (with
detection): `verify` opens the door if any of them is the person, `who_is_it` names the best-matching face, and
`identify` reports every face.
"""
from typing import NamedTuple

import numpy as np

from tinyconv.faces.database import FaceDatabase
from tinyconv.faces.encoding import encode_faces
from tinyconv.faces.search import FaceSearch, exact_nearest
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS, default_threshold, same_person


class Match(NamedTuple):
    box: np.ndarray   # (x0, y0, x1, y1) of the face in the photo's pixels
    nearest: str      # the nearest person of the database
    distance: float   # the distance to them
    known: bool       # same_person(distance, threshold): the face is `nearest`, else unknown


def verify(image_path, identity, database, model, threshold=None, preprocess=None):
    """The course's door: -> (distance, door_open), printing "It's <identity>, welcome in!" or the refusal.

    distance: the smallest distance of a face of the photo to `identity`.
    """
    preprocess = resolve_preprocessing(database, preprocess)
    threshold = default_threshold(preprocess) if threshold is None else threshold
    _, distances = distances_to(image_path, identity, database, model, preprocess)
    dist = float(distances.min())
    door_open = bool(same_person(dist, threshold))
    print(f"It's {identity}, welcome in!" if door_open else f"It's not {identity}, please go away")
    return dist, door_open


def who_is_it(image_path, database, model, threshold=None, preprocess=None):
    """The course's face recognition: -> (min_dist, identity) of the nearest person in the database.

    Prints "it's <identity>, the distance is <d>", or "Not in the database." when min_dist is not below
    `threshold` (as in the course, the nearest identity is still returned; compare min_dist yourself).
    """
    preprocess = resolve_preprocessing(database, preprocess)
    threshold = default_threshold(preprocess) if threshold is None else threshold
    _, names, distances = nearest_people(image_path, database, model, preprocess)
    face = int(np.argmin(distances))
    min_dist, identity = float(distances[face]), names[face]
    print(f"it's {identity}, the distance is {min_dist}" if same_person(min_dist, threshold)
          else "Not in the database.")
    return min_dist, identity


def identify(image_path, database, model, threshold=None, preprocess=None):
    """Every face of a photo (a group photo) -> list of `Match`, in the detector's order (best score first)."""
    preprocess = resolve_preprocessing(database, preprocess)
    threshold = default_threshold(preprocess) if threshold is None else threshold
    boxes, names, distances = nearest_people(image_path, database, model, preprocess)
    return [Match(box, name, float(d), bool(same_person(d, threshold)))
            for box, name, d in zip(boxes, names, distances)]


def distances_to(image_path, identity, database, model, preprocess):
    """1:1 -> (boxes (F, 4), distances (F,)): each face of the photo against the few stored encodings of
    `identity` (the smallest distance; a direct product). Unknown identity, or no face: ValueError naming it."""
    if identity not in database:
        raise ValueError(f"no one named {identity!r} in the database")
    if isinstance(database, FaceDatabase):
        database.check_model(model)
    stored = np.atleast_2d(np.asarray(database[identity], dtype=np.float32))
    boxes, encodings = _encode_photo(image_path, model, preprocess)
    return boxes, np.linalg.norm(encodings[:, None, :] - stored[None], axis=-1).min(axis=1)


def nearest_people(image_path, database, model, preprocess):
    """1:K -> (boxes (F, 4), names (F,), distances (F,)): each face of the photo, its nearest person and the
    distance to them (the smallest over the person's encodings).

    A FaceDatabase is searched by `search.FaceSearch` among its named faces (exact, or HNSW beyond the switch
    point); the course's dict by the same exact search. An empty database, or no face: ValueError naming it.
    """
    if isinstance(database, FaceDatabase):
        database.check_model(model)
        search = FaceSearch(database, named=True)
        if not search.size:
            raise ValueError("the database is empty: enrol someone first")
        boxes, encodings = _encode_photo(image_path, model, preprocess)
        ids, distances = search.nearest(encodings, 1)
        records = database.face_records(ids[:, 0])
        names = [records.get(int(i), {}).get("person") for i in ids[:, 0]]
        if None in names:
            raise ValueError(f"{database.path}: a person was removed during the lookup; run it again")
        return boxes, names, distances[:, 0]
    if not database:
        raise ValueError("the database is empty: enrol someone first")
    people = {name: np.atleast_2d(np.asarray(enc, dtype=np.float32)) for name, enc in sorted(database.items())}
    owner = np.concatenate([[name] * len(enc) for name, enc in people.items()])
    boxes, encodings = _encode_photo(image_path, model, preprocess)
    rows, distances = exact_nearest(np.concatenate(list(people.values())), encodings, 1)
    return boxes, owner[rows[:, 0]].tolist(), distances[:, 0]


def _encode_photo(image_path, model, preprocess):
    """-> (boxes (F, 4), encodings (F, 128)) of the faces of the photo; none, or a non-finite encoding: ValueError."""
    boxes, encodings = encode_faces(model, image_path, preprocess)
    what = "image" if isinstance(image_path, np.ndarray) else image_path
    if not len(boxes):
        raise ValueError(f"{what}: no face found")
    if not np.isfinite(encodings).all():
        raise ValueError(f"{what}: the network gave a NaN or infinite encoding (damaged weights?)")
    return boxes, encodings


def resolve_preprocessing(database, preprocess=None):
    """The preprocessing to encode a new photo with: the database's own (another one is refused), else the given
    one, else the default."""
    if isinstance(database, FaceDatabase) and database.preprocess is not None:
        preprocess = preprocess or database.preprocess
        database.check_preprocessing(preprocess)
    return preprocess or DEFAULT_PREPROCESS
