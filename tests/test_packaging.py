"""setup.cfg's dependency floors admit only versions the code and tests work with."""
import configparser
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def floors():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].strip().splitlines()
    return {m.group(1): tuple(map(int, m.group(2).split("."))) for m in map(re.compile(r"(\w+)>=([\d.]+)").match,
                                                                            lines) if m}


def test_numpy_floor_is_numpy_2():
    """The tests call np.trapezoid (NumPy 2.0) and float32 stays float32 only under NumPy 2's promotion rules
    (NEP 50): with NumPy 1.x, np.float32(3) + 3.0 is float64."""
    assert floors()["numpy"] >= (2, 0)
    assert hasattr(np, "trapezoid") and (np.float32(3) + 3.0).dtype == np.float32
