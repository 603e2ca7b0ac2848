"""Face verification (1:1, "is this person who they claim to be?") and recognition (1:K, "who is this?").

`database` is either the course's plain dict (name -> one encoding) or a `FaceDatabase` (name -> one or more
encodings, with the model and preprocessing that made them). A person's distance is the smallest distance from the
new encoding to any of their stored encodings. The course's threshold 0.7 suits its 96 px images with the "course"
preprocessing; on real photos use the calibrated thresholds of `tinyconv.faces.thresholds`.
"""
import numpy as np

from tinyconv.faces.database import FaceDatabase
from tinyconv.faces.encoding import img_to_encoding


def verify(image_path, identity, database, model, threshold=0.7, preprocess=None):
    """The course's door: -> (distance, door_open), printing "It's <identity>, welcome in!" or the refusal.

    preprocess defaults to the database's own (a FaceDatabase) or the course's (a dict).
    """
    people = _people(database, model)
    if identity not in people:
        raise ValueError(f"no one named {identity!r} in the database")
    encoding = _encoding(image_path, database, model, preprocess)
    dist = _distance(encoding, people[identity])
    if dist < threshold:
        print(f"It's {identity}, welcome in!")
        door_open = True
    else:
        print(f"It's not {identity}, please go away")
        door_open = False
    return dist, door_open


def who_is_it(image_path, database, model, threshold=0.7, preprocess=None):
    """The course's face recognition: -> (min_dist, identity) of the nearest person in the database.

    Prints "it's <identity>, the distance is <d>", or "Not in the database." when the nearest person is farther
    than `threshold` (as in the course, the nearest identity is still returned; compare min_dist yourself).
    """
    people = _people(database, model)
    if not people:
        raise ValueError("the database is empty: enrol someone first")
    encoding = _encoding(image_path, database, model, preprocess)
    distances = {name: _distance(encoding, stored) for name, stored in people.items()}
    identity = min(distances, key=distances.get)
    min_dist = distances[identity]
    if min_dist > threshold:
        print("Not in the database.")
    else:
        print(f"it's {identity}, the distance is {min_dist}")
    return min_dist, identity


def _people(database, model):
    """name -> (k, 128) array, after checking that a FaceDatabase was made by this model."""
    if isinstance(database, FaceDatabase):
        database.check_model(model)
        return database.people()
    return {name: np.atleast_2d(np.asarray(enc, dtype=np.float32)) for name, enc in database.items()}


def _encoding(image_path, database, model, preprocess):
    """Encode the new image the way the database's encodings were made."""
    if isinstance(database, FaceDatabase) and database.preprocess is not None:
        preprocess = preprocess or database.preprocess
        database.check_preprocessing(preprocess)
    return img_to_encoding(image_path, model, preprocess or "course")


def _distance(encoding, stored):
    """Smallest L2 distance from one encoding to the rows of `stored` (k, 128)."""
    return float(np.min(np.linalg.norm(stored - encoding, axis=-1)))
