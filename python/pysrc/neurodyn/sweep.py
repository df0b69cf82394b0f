"""The ORGaNICs stability sweep beyond one process: list its shards, run any shard anywhere into one
shared folder, merge — on a SLURM array (``scripts/sweep.sbatch``), submitit's ``map_array``
(``analysis/sweep_submitit.py``), Dask, or a plain loop::

    import neurodyn.sweep as sw
    shards = sw.shards("default", 8)                  # ["0/8", …, "7/8"]
    for s in shards:                                   # or client.map(sw.run_shard, …)
        sw.run_shard("default", s, "out/sweep")
    table = sw.merge("out/sweep")                      # = the one-process run, byte for byte

Each trial's seed derives from the base seed and the trial's grid position, never from the shard
or the thread, so any split gives the same rows. A shard journals every finished trial
(``rows.<i>of<n>.csv``): a shard that was killed, or rerun by a scheduler after its worker died,
continues where it stopped, and nothing is lost or counted twice.
"""

from __future__ import annotations

import os

from . import _native
from ._commands import command, read_table

__all__ = ["config_text", "trials", "shards", "run_shard", "merge", "run", "concat"]


def config_text(config):
    """A configuration as TOML text: ``"default"``/``"full"`` (the built-in grids), a path to a
    TOML file, or TOML text."""
    if config in ("default", "full"):
        return _native.sweep_config(config)
    if isinstance(config, os.PathLike) or (isinstance(config, str) and os.path.isfile(config)):
        with open(config) as f:
            return f.read()
    return config


def trials(config):
    """How many trials the sweep has (δ values × input strengths × trials per cell)."""
    return _native.sweep_trials(config_text(config))


def shards(config, n):
    """The ``n`` shards of the sweep as ``--shard`` values ``"i/n"`` (contiguous runs of trials,
    sizes differing by at most one). ``n`` may not exceed the number of trials."""
    n = int(n)
    total = trials(config)
    if not 1 <= n <= total:
        raise ValueError(f"invalid `n`: {n} shards for {total} trials (need 1 ≤ n ≤ trials)")
    return [f"{i}/{n}" for i in range(n)]


def _config_args(config, out):
    if config in ("default", "full"):
        return {"preset": config}
    if isinstance(config, os.PathLike) or (isinstance(config, str) and os.path.isfile(config)):
        return {"config": os.fspath(config)}
    # TOML text: kept beside the shards' journals so every shard (and merge) reads the same.
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "config.input.toml")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(config)
    os.replace(tmp, path)
    return {"config": path}


def run_shard(config, shard, out, *, threads=None, progress=False, **options):
    """Runs shard ``shard`` (``"i/n"`` or ``(i, n)``) of the sweep into the folder ``out``
    (shared by all shards; resumable). Options are ``stability-sweep``'s flags (``seed``,
    ``store``, ``device``). Returns the number of trials the shard holds when done. The last
    shard to finish also writes the whole sweep's tables; :func:`merge` does it in any case."""
    if isinstance(shard, (tuple, list)):
        shard = f"{int(shard[0])}/{int(shard[1])}"
    out = os.fspath(out)
    command("stability-sweep", progress=progress, threads=threads, out=out, shard=shard,
            **_config_args(config, out), **options)
    i, n = (int(v) for v in shard.split("/"))
    path = os.path.join(out, f"rows.{i}of{n}.csv")
    with open(path) as f:
        return sum(1 for _ in f) - 1


def merge(out, *, progress=False):
    """Joins the shards' journals in ``out`` into the sweep's tables and figure
    (``stability-sweep merge``) and returns the results table (one row per trial) as a DataFrame.
    Raises ``ValueError`` counting the trials present when a shard has not finished (nothing is
    written then)."""
    out = os.fspath(out)
    command("stability-sweep", "merge", progress=progress, out=out)
    return read_table(os.path.join(out, "results"))


def run(config, out, *, threads=None, progress=True, **options):
    """The whole sweep in this process (one shard) into ``out``; the results table."""
    run_shard(config, "0/1", out, threads=threads, progress=progress, **options)
    return read_table(os.path.join(os.fspath(out), "results"))


def concat(tables):
    """Shards' tables (DataFrames, or paths of .csv/.parquet files) joined in shard order — the
    whole table of a sharded ``lyapunov --sweep-g``/``--checkpoints`` run. The spiking λ grid and
    this stability sweep need no concatenation: their shards share one folder and the last one
    writes the whole report."""
    import pandas as pd

    frames = [t if isinstance(t, pd.DataFrame) else read_table(t) for t in tables]
    return pd.concat(frames, ignore_index=True)

