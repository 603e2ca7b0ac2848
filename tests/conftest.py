"""Shared test fixtures: where ../shared/ is, the converted weights, and one rule for what is missing.

A test whose data (../shared/) or weights are absent is skipped with a clear reason. With
TINYCONV_REQUIRE_DATA=1 (set by .ci/run, which has both) the same test fails instead, so CI cannot pass by
skipping. Hypothesis runs under one profile for every test file.
"""
import os
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TINYCONV_SHARED", ROOT.parent / "shared"))
REQUIRE_DATA = os.environ.get("TINYCONV_REQUIRE_DATA") == "1"

settings.register_profile("tinyconv", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("tinyconv")


def missing(reason):
    """Skip the calling test because data or weights are absent; fail instead under TINYCONV_REQUIRE_DATA=1."""
    if REQUIRE_DATA:
        pytest.fail(f"{reason} (TINYCONV_REQUIRE_DATA=1: data and weights must be present)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared():
    """Path of ../shared/ (beside the project root, or $TINYCONV_SHARED); missing() when it is absent."""
    if not (SHARED / "README.md").is_file():
        missing(f"shared data folder not found at {SHARED} (set TINYCONV_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def weights_file():
    """weights_file(name) -> path of the converted weights `name` ('facenet', 'vgg16', ...); missing() if absent."""
    from tinyconv import weights

    def get(name):
        path = weights.path_if_present(name)
        if path is None:
            missing(f"converted {name} weights absent (python -m tinyconv.weights fetch {name})")
        return path
    return get
