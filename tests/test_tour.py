"""docs/tour.md stays true: every ```python block runs, and every file and function it names exists.

The blocks run in document order in ONE namespace for the whole file (so the FaceNet and VGG16 models are loaded
once), with the project root as the working directory. There is one test per `## ` section; a section's test first
runs every earlier section that has not run yet, so `-k` selection works too.

A block whose first lines contain `# needs: <what>` runs only when that is available:
    facenet weights / vgg16 weights   the converted file (tinyconv.weights.path_if_present)
    shared data                       the shared folder: ../shared/ beside the project root, or $TINYCONV_SHARED
                                      (blocks write "../shared/" as a reader would; the test points it at that)
Otherwise it is left out and the section's test is reported as skipped (conftest.missing: a failure under
TINYCONV_REQUIRE_DATA=1), naming what was missing, after the section's other blocks have run and passed.
Blocks that need nothing must not use names made by blocks that do.
"""
import importlib
import os
import re
from pathlib import Path

import pytest

from conftest import SHARED, missing
from tinyconv import weights

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "docs" / "tour.md"
NEEDS = {
    "facenet weights": lambda: weights.path_if_present("facenet") is not None,
    "vgg16 weights": lambda: weights.path_if_present("vgg16") is not None,
    "shared data": lambda: (SHARED / "README.md").is_file(),
}


def read_sections(text):
    """[(title, [(first line number, code, needs), ...]), ...] for each `## ` section, in order; blocks before
    the first section form a section "Setup"."""
    sections = [("Setup", [])]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif line.strip() == "```python":
            start, body = i + 1, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            needs = [m.group(1).strip() for m in map(re.compile(r"#\s*needs:\s*(.+)").match, body[:3]) if m]
            needs = [n.strip() for item in needs for n in item.split(",")]
            sections[-1][1].append((start + 1, "\n".join(body), needs))
        i += 1
    return [section for section in sections if section[1]]


SECTIONS = read_sections(TOUR.read_text()) if TOUR.is_file() else []
_state = {"namespace": {"__name__": "tour"}, "done": {}}


def run_section(index):
    """Run section `index` (after any earlier ones not run yet); returns the needs its skipped blocks lacked."""
    for i in range(index + 1):
        if i in _state["done"]:
            continue
        missing = []
        _state["done"][i] = missing  # an earlier failure is not retried by later sections
        title, blocks = SECTIONS[i]
        for line, code, needs in blocks:
            unknown = [n for n in needs if n not in NEEDS]
            assert not unknown, f"docs/tour.md:{line}: unknown '# needs:' {unknown} (known: {list(NEEDS)})"
            lacking = [n for n in needs if not NEEDS[n]()]
            if lacking:
                missing.append(f"line {line} ({', '.join(lacking)})")
                continue
            cwd = os.getcwd()
            os.chdir(ROOT)
            try:
                code = code.replace('"../shared/', f'"{SHARED.as_posix()}/')
                exec(compile(code, f"docs/tour.md:{line}", "exec"), _state["namespace"])
            finally:
                os.chdir(cwd)
    return _state["done"][index]


@pytest.mark.parametrize("index", range(len(SECTIONS)), ids=[re.sub(r"\W+", "_", t).strip("_")[:40]
                                                             for t, _ in SECTIONS])
def test_section_runs(index):
    lacking = run_section(index)
    if lacking:
        missing(f"{SECTIONS[index][0]}: the other blocks passed; left out blocks at {', '.join(lacking)}")


def test_tour_has_examples():
    assert TOUR.is_file(), "docs/tour.md is missing"
    assert sum(len(blocks) for _, blocks in SECTIONS) >= 20


CODE_REF = re.compile(r"`(tinyconv/[\w/]+\.py)`(?:\s*→\s*((?:`[\w.]+`(?:,\s*)?)+))?")


def test_named_files_and_functions_exist():
    """Every `tinyconv/x.py` the tour names exists, and every `name` after `→` is defined in that module."""
    refs = CODE_REF.findall(TOUR.read_text())
    assert refs, "the tour names no code"
    for path, names in refs:
        assert (ROOT / path).is_file(), f"docs/tour.md names {path}, which does not exist"
        module = importlib.import_module(path[:-3].replace("/", ".").removesuffix(".__init__"))
        for name in re.findall(r"`([\w.]+)`", names):
            obj = module
            for part in name.split("."):
                assert hasattr(obj, part), f"docs/tour.md: {path} has no {name}"
                obj = getattr(obj, part)


def test_figures_exist_and_are_small():
    """Every picture the tour shows is in docs/figures/ and smaller than 200 KB."""
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", TOUR.read_text())
    assert figures, "the tour shows no figures"
    for figure in figures:
        path = TOUR.parent / figure
        assert path.is_file(), f"docs/tour.md shows {figure}, which does not exist"
        assert path.stat().st_size < 200_000, f"{figure} is {path.stat().st_size} bytes (limit 200 KB)"
