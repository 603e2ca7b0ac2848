"""The course's two assignments as notebooks (docs/notebooks/) run top to bottom without an error.

Each notebook is executed by nbclient in a fresh kernel started with this very interpreter (a kernel spec written to
a temporary folder points at sys.executable), with the project root first on PYTHONPATH and the notebook's folder as
the working directory, as `jupyter lab docs/notebooks` would run it. The notebooks check the course's numbers with
`assert`, so a wrong number is an error too. Committed notebooks carry no outputs.
"""
import json
import os
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

from conftest import SHARED, missing

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "docs" / "notebooks"
KERNEL = "tinyconv-test"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Environment for the kernels: a kernel spec running sys.executable, and the project root on PYTHONPATH."""
    folder = tmp_path_factory.mktemp("jupyter") / "kernels" / KERNEL
    folder.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "tinyconv test", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec))
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "PYTHONPATH")}
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(folder.parents[1]), saved["JUPYTER_PATH"]]))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def execute(name):
    """Run docs/notebooks/<name> top to bottom; any error in a cell fails with that cell's traceback."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=900,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{name}: {error}", pytrace=False)
    return notebook


def require(weights_file, *names, data=()):
    """missing() unless the shared data folders `data` and the converted weights `names` are present."""
    for folder in data:
        if not (SHARED / folder).is_dir():
            missing(f"{SHARED / folder} is absent (set TINYCONV_SHARED)")
    for name in names:
        weights_file(name)


@pytest.mark.parametrize("name", ["face_recognition.ipynb", "art_generation.ipynb"])
def test_committed_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code"
    assert all(not cell.outputs and cell.execution_count is None for cell in code), f"{name} has outputs"


def test_art_generation_runs(kernel_env, weights_file):
    require(weights_file, "vgg16", data=["data/style", "data/fixtures"])
    notebook = execute("art_generation.ipynb")
    images = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
              if "image/png" in out.get("data", {})]
    assert len(images) >= 6, f"expected a picture at each step of the notebook, got {len(images)}"


def test_face_recognition_runs(kernel_env, weights_file):
    require(weights_file, "facenet", "mtcnn", data=["data/faces/coursera", "data/fixtures", "data/faces/lfw"])
    notebook = execute("face_recognition.ipynb")
    text = "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "It's younes, welcome in!" in text and "It's not kian, please go away" in text
