"""The notebook-style example (analysis/notebook.py) headless at small sizes: train → fixed points →
Lyapunov spectrum → continuation → spiking conversion, in Python alone, and its numbers agree."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_notebook_example_runs_and_its_analyses_agree(tmp_path):
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "analysis"))
    try:
        import notebook
    finally:
        sys.path.pop(0)
    r = notebook.main(["--small", "--out", str(tmp_path / "nb"), "--figures", str(tmp_path)])
    assert list(r["metrics"]["epoch"]) == [1, 2, 3]
    fp, lyap, br = r["fixed_points"], r["lyapunov"], r["branch"]
    # The continuation starts on the fixed point the finder found, with the same stability.
    assert np.allclose(br["x"][0], fp["x"][0], atol=1e-8)
    assert br["param"][0] == 1.0
    stable = fp["classes"][0].startswith("stable")
    assert bool(br["stable"][0]) == stable
    # The trajectory started near that fixed point: the leading exponent's sign is its stability.
    assert (lyap[0] < 0) == stable
    assert np.all(np.diff(lyap) <= 1e-12)
    g = r["spiking"]["grid"]
    assert list(g["scaling_factor"]) == [20.0, 30.0, 40.0]
    assert r["spiking"]["summary"]["scaling_factor"] in (20.0, 30.0, 40.0)
    for ext in ("png", "svg"):
        assert (tmp_path / f"notebook.{ext}").stat().st_size > 10_000
