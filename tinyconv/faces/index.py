"""Index folders of photos: find every face, encode it, and store it in a `FaceDatabase`.

    index_photos(db, ["photos/"], functools.partial(facenet, None), "standardize-crop150", workers=2)

The work is split in two. Analysing a photo (decode, detect, encode) is done by `analyse`, anywhere: in this
process, in N local processes (`workers`), or on a Dask cluster (`executor=Client(address).get_executor()`); it
receives the photo's bytes, so the workers need no access to the files. Writing is done here only, one
transaction per photo, so an interrupted index (Ctrl-C, kill -9) loses at most the photos in flight, and the next
run skips every photo whose SHA-256 is already stored.

The faces of a photo come from a `detector`: a function (H, W, 3) uint8 image -> list of (face, crop), where
face has `.box` (x0, y0, x1, y1) in pixels and `.landmarks` ((5, 2) or None), and crop is the image the network
reads. The default is the preprocessing's own: MTCNN and FaceNet's crop for "mtcnn", else the one central box of
photos that are face crops already (LFW with "standardize-crop150", the course's images with "course").
"""
import concurrent.futures
import hashlib
import io
import os
from collections import namedtuple
from pathlib import Path

import numpy as np

from tinyconv.faces.encoding import encode, model_fingerprint
from tinyconv.faces.preprocess import all_faces, detect, facenet_crop, parse_preprocessing
from tinyconv.files import load_image
from tinyconv.progress import Progress

Region = namedtuple("Region", "box score landmarks")  # a face: box (x0, y0, x1, y1) pixels, score, (5, 2) or None
Result = namedtuple("Result", "faces fingerprint error")  # faces: list of (encoding, box, landmarks)


def preprocessing_detector(image, preprocess):
    """The faces a preprocessing sees: MTCNN's, with FaceNet's crop, for "mtcnn"; else the one central box."""
    if parse_preprocessing(preprocess).mode == "mtcnn":
        return [(face, facenet_crop(image, face)) for face in detect(image)]
    return [(Region(tuple(face.box), 1.0, None), face.pixels) for face in all_faces(image, preprocess)]


def crop_preprocessing(preprocess):
    """How the network reads a detector's crops: the scaling of `preprocess` (standardize for mtcnn) and its
    -flip, with no further crop or detection."""
    mode, _, flip = parse_preprocessing(preprocess)
    return ("standardize" if mode == "mtcnn" else mode) + ("-flip" if flip else "")


def faces_and_encodings(image, model, preprocess, detector=None):
    """All faces of one (H, W, 3) uint8 image -> list of (encoding (128,), box, landmarks or None).

    detector: image -> list of (face, crop) (module doc); default: the preprocessing's own.
    """
    return _encode_found([_found(image, preprocess, detector)], model, preprocess)[0]


_loaded = {}  # per process: repr(load_model) -> (model, fingerprint), so each worker loads its network once


def analyse(photos, load_model, preprocess, detector=None):
    """Photos [(name, bytes), ...] -> [Result, ...]; the faces of all of them go through the network as one batch
    (8 photos at once take a quarter of the time of 8 one by one). A photo that cannot be read (not an image, a
    decompression bomb) is a Result with an error, not an exception. `load_model()` is called once per process
    (it fetches the weights if needed)."""
    key = repr(load_model)
    if key not in _loaded:
        model = load_model()
        _loaded[key] = (model, model_fingerprint(model))
    model, fingerprint = _loaded[key]
    found, errors = [], []
    for name, data in photos:
        try:
            found.append(_found(load_image(name, data), preprocess, detector))
            errors.append(None)
        except ValueError as e:
            found.append([])
            errors.append(str(e))
    return [Result(faces, fingerprint, error) for faces, error in zip(_encode_found(found, model, preprocess),
                                                                          errors)]


def _found(image, preprocess, detector):
    return detector(image) if detector is not None else preprocessing_detector(image, preprocess)


def _encode_found(found, model, preprocess):
    """Lists of (face, crop) of several images -> lists of (encoding, box, landmarks), one network batch."""
    crops = [crop for faces in found for _, crop in faces]
    encodings = iter(encode(model, crops, crop_preprocessing(preprocess)) if crops else [])
    return [[(next(encodings), tuple(float(v) for v in face.box),
              None if face.landmarks is None else np.asarray(face.landmarks)) for face, _ in faces]
            for faces in found]


def photo_files(folders):
    """Every file under the folders (hidden ones excepted), sorted; a missing folder is a FileNotFoundError."""
    for folder in folders:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
    files = []
    for folder in folders:
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [Path(root) / n for n in sorted(names) if not n.startswith(".")]
    return files


class InProcess(concurrent.futures.Executor):
    """An executor that runs each task at once, in this process (one worker, no copies)."""

    def submit(self, fn, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: B036 -- handed to the caller through the future, as a pool would
            future.set_exception(e)
        return future


def index_photos(db, folders, load_model, preprocess, workers=1, executor=None, detector=None, report=print,
                 quiet=False, batch=8):
    """Analyse every new photo under `folders` and store its faces in `db`. Returns a dict of counts.

    executor: where `analyse` runs (default: this process for workers=1, else a pool of `workers` processes).
    batch: photos per task (their faces share one network batch); each photo is still written in its own
    transaction as soon as its task is back, so an interruption loses at most the tasks in flight.
    report(line) is called once for each file skipped with a problem. Progress goes to stderr unless `quiet`.
    """
    db.check_preprocessing(preprocess)
    files = photo_files(folders)
    known = db.indexed_sha256s()
    todo, counts = [], {"files": len(files), "already": 0, "problems": 0, "photos": 0, "faces": 0}
    for path in files:  # first pass: which photos are new (hashing is quick beside the network)
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as e:
            report(f"skipped {path}: unreadable ({e.strerror or e})")
            counts["problems"] += 1
            continue
        if sha in known:
            counts["already"] += 1
        else:
            known.add(sha)  # two copies of one photo are analysed once
            todo.append(path)
    own = executor is None
    if own:
        executor = InProcess() if workers == 1 else concurrent.futures.ProcessPoolExecutor(workers)
    meter = Progress(len(todo), "indexing", unit="photos", stream=io.StringIO() if quiet else None)
    pending, queue = {}, iter(todo)
    try:
        feed = (executor, pending, queue, 2 * max(workers, 1), batch, load_model, preprocess, detector, report,
                counts)
        _feed(*feed)
        while pending:
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                for (path, sha), result in zip(pending.pop(future), future.result()):
                    if result.error:
                        db.add_failure(path, sha, result.error)
                        report(f"skipped {result.error}")
                        counts["problems"] += 1
                    else:
                        counts["faces"] += db.add_photo(path, sha, result.fingerprint, preprocess, result.faces)
                        counts["photos"] += 1
                    meter.update(1, f"{counts['faces']} faces, "
                                    f"{counts['faces'] / max(meter.elapsed, 1e-9):.1f} faces/s")
            _feed(*feed)
    finally:
        meter.close()
        if own:
            executor.shutdown(wait=False, cancel_futures=True)
    counts["seconds"] = meter.elapsed
    return counts


def _feed(executor, pending, queue, window, batch, load_model, preprocess, detector, report, counts):
    """Keep `window` tasks of `batch` photos in flight; each photo is read (and hashed again, in case it changed)
    just before it goes."""
    while len(pending) < window:
        photos, keys = [], []
        while len(photos) < batch:
            path = next(queue, None)
            if path is None:
                break
            try:
                data = path.read_bytes()
            except OSError as e:
                report(f"skipped {path}: unreadable ({e.strerror or e})")
                counts["problems"] += 1
                continue
            photos.append((str(path), data))
            keys.append((path, hashlib.sha256(data).hexdigest()))
        if not photos:
            return
        pending[executor.submit(analyse, photos, load_model, preprocess, detector)] = keys
