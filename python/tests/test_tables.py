"""The Parquet tables neurodyn writes read back in pandas (pyarrow) with every value intact.

`tests/fixtures/tables/mixed.parquet` is written by neurodyn's table writer; the Rust test
`tables::parquet_round_trips_every_bit` checks that it is the table below.
"""
import math
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "tables" / "mixed.parquet"


def test_pandas_reads_a_neurodyn_table():
    df = pd.read_parquet(FIXTURE)
    assert list(df.columns) == ["x", "k", "label"]
    assert df["x"].dtype == np.float64 and df["k"].dtype == np.int64
    x = df["x"].to_numpy()
    assert x[0] == 1.5
    assert x[1] == 0.0 and math.copysign(1.0, x[1]) == -1.0
    assert math.isnan(x[2]) and x[3] == math.inf
    assert x[4] == 5e-324 and x[5] == 1e-30 and x[6] == math.pi
    assert df["k"].tolist() == [0, -1, 2**63 - 1, -(2**63), 7, 8, 9]
    assert df["label"].tolist() == ["a", "b,c", '"q"', "λ", "", "line\nbreak", "z"]
