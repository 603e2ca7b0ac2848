"""Shared test fixtures: where ../shared/ is, and skips with a clear reason when data or weights are absent."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TINYCONV_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared():
    """Path of ../shared/ (beside the project root); skips when it is absent."""
    if not (SHARED / "README.md").is_file():
        pytest.skip(f"shared data folder not found at {SHARED} (set TINYCONV_SHARED)")
    return SHARED
