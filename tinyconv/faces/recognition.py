"""Face verification (1:1, "is this person who they claim to be?") and recognition (1:K, "who is this?").

`database` is either the course's plain dict (name -> one encoding, made by `img_to_encoding` with the same
preprocessing) or a `FaceDatabase` (name -> one or more encodings, with the model and preprocessing that made
them). A person's distance is the smallest distance from a face's encoding to any of their stored encodings, and
the decision is `thresholds.same_person`: distance < threshold. The threshold defaults to the one calibrated for
the preprocessing (`thresholds.default_threshold`: 0.7 for the course's). A photo may hold several faces (with
detection): `verify` opens the door if any of them is the person, `who_is_it` names the best-matching face, and
`identify` reports every face.
"""
from typing import NamedTuple

import numpy as np

from tinyconv.faces.database import FaceDatabase
from tinyconv.faces.encoding import encode_faces
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
    if identity not in database:
        raise ValueError(f"no one named {identity!r} in the database")
    preprocess = resolve_preprocessing(database, preprocess)
    threshold = default_threshold(preprocess) if threshold is None else threshold
    _, names, distances = face_distances(image_path, database, model, preprocess)
    dist = float(distances[:, names.index(identity)].min())
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
    _, names, distances = face_distances(image_path, database, model, preprocess)
    face, person = np.unravel_index(np.argmin(distances), distances.shape)
    min_dist, identity = float(distances[face, person]), names[person]
    print(f"it's {identity}, the distance is {min_dist}" if same_person(min_dist, threshold)
          else "Not in the database.")
    return min_dist, identity


def identify(image_path, database, model, threshold=None, preprocess=None):
    """Every face of a photo (a group photo) -> list of `Match`, in the detector's order (best score first)."""
    preprocess = resolve_preprocessing(database, preprocess)
    threshold = default_threshold(preprocess) if threshold is None else threshold
    boxes, names, distances = face_distances(image_path, database, model, preprocess)
    nearest = distances.argmin(axis=1)
    return [Match(box, names[k], float(d[k]), bool(same_person(d[k], threshold)))
            for box, d, k in zip(boxes, distances, nearest)]


def face_distances(image_path, database, model, preprocess):
    """-> (boxes (F, 4), names (P,), distances (F, P)): each face of the photo against each person.

    No face in the photo, or an empty database: ValueError naming it.
    """
    people = _people(database, model)
    if not people:
        raise ValueError("the database is empty: enrol someone first")
    boxes, encodings = encode_faces(model, image_path, preprocess)
    if not len(boxes):
        raise ValueError(f"{'image' if isinstance(image_path, np.ndarray) else image_path}: no face found")
    names = sorted(people)
    distances = np.stack([np.linalg.norm(encodings[:, None, :] - people[name][None], axis=-1).min(axis=1)
                          for name in names], axis=1)
    return boxes, names, distances


def resolve_preprocessing(database, preprocess=None):
    """The preprocessing to encode a new photo with: the database's own (another one is refused), else the given
    one, else the default."""
    if isinstance(database, FaceDatabase) and database.preprocess is not None:
        preprocess = preprocess or database.preprocess
        database.check_preprocessing(preprocess)
    return preprocess or DEFAULT_PREPROCESS


def _people(database, model):
    """name -> (k, 128) array, after checking that a FaceDatabase was made by this model."""
    if isinstance(database, FaceDatabase):
        database.check_model(model)
        return {name: database[name] for name in database.names()}
    return {name: np.atleast_2d(np.asarray(enc, dtype=np.float32)) for name, enc in database.items()}
