"""Every binary of neurodyn as a Python call: the same flags, defaults, checks and files.

``command("train", out="run/", task="go-nogo", epochs=3)`` runs what ``train --out run/ --task
go-nogo --epochs 3`` runs, in this process (no subprocess, no parsing of printed text): keyword
``foo_bar=v`` is the flag ``--foo-bar v``; ``True`` is a bare flag, ``None`` and ``False`` leave a
flag out (its default applies); a list or tuple is one comma-separated value (``size=(10, 10)``,
``checkpoints=[a, b]``); a numpy array is saved as ``.npy`` and its path passed.
The family functions (``train``, ``spiking_grid``, ``cordsnet_simulate``, …) call it and read the
files back as numpy arrays and pandas DataFrames.

Ctrl-C stops a run at its next safe point (a minibatch, a trial, a grid value, a continuation
point) and raises ``KeyboardInterrupt``; what it finished stays in ``out`` and calling again with
the same ``out`` resumes. ``progress=True`` draws a tqdm bar (``tqdm.auto``: a terminal or
Jupyter) when tqdm is installed, else a line on stderr every 10 s; ``progress=False`` is quiet;
a callable is called as ``progress(position, length or None, message)`` about ten times a second.
Runs in several threads of one process work (Dask workers with several threads), but Ctrl-C and
the progress display are process-wide: Ctrl-C stops all of them.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time

import numpy as np

from . import _native

__all__ = ["command", "Checkpoint", "Run", "read_table"]


def _save_array(a, key, folder):
    """An array as ``folder/<key>-<hash>.npy`` (content-addressed: a resumed run sees the same
    path for the same data, and another path for other data)."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha1()
    h.update(str((a.dtype.str, a.shape)).encode())
    h.update(a.tobytes())
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{key}-{h.hexdigest()[:12]}.npy")
    if not os.path.exists(path):
        tmp = path + ".tmp.npy"
        np.save(tmp, a)
        os.replace(tmp, path)
    return path


def _value(v, key, folder):
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, (str, bytes)):
        return v.decode() if isinstance(v, bytes) else v
    if isinstance(v, np.ndarray):
        return _save_array(v, key, folder)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def argv(options, folder):
    """The flags of ``options`` (see the module documentation); arrays are saved under ``folder``."""
    out = []
    for key, v in options.items():
        if v is None or v is False:
            continue
        # A trailing underscore spells a flag that is a Python keyword: from_ → --from.
        flag = "--" + key.rstrip("_").replace("_", "-")
        if v is True:
            out.append(flag)
        elif isinstance(v, (list, tuple)):
            out += [flag, ",".join(_value(x, key, folder) for x in v)]
        else:
            out += [flag, _value(v, key, folder)]
    return out


class _Progress:
    """Draws the run's progress (position, length, message) as the native side reports it."""

    def __init__(self, what):
        self.what = what
        self.bar = None
        self.last = time.monotonic()
        try:
            from tqdm.auto import tqdm

            self.tqdm = tqdm
        except ImportError:
            self.tqdm = None

    def __call__(self, pos, length, msg):
        if self.tqdm is not None:
            if self.bar is None:
                self.bar = self.tqdm(total=length, desc=self.what, leave=False)
            if length is not None and self.bar.total != length:
                self.bar.total = length
            self.bar.n = pos
            self.bar.set_postfix_str(msg, refresh=False)
            self.bar.refresh()
        elif time.monotonic() - self.last >= 10.0:
            self.last = time.monotonic()
            total = f"/{length}" if length else ""
            print(f"{self.what}: {pos}{total} {msg}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def command(name, *subcommand, progress=True, threads=None, arrays=None, **options):
    """Runs the binary ``name`` (``train``, ``spiking``, ``cordsnet``, ``stability-sweep``, …) with
    the flags ``options`` in this process; ``subcommand`` goes first (``command("cordsnet",
    "simulate", mnist=0)``). ``threads``: worker threads (default: all cores). ``arrays``: the
    folder for arrays given as options (default: a temporary one, removed after the run).
    Raises ``ValueError`` naming the flag for invalid input (the binary's exit code 2),
    ``RuntimeError`` for a run that failed (exit 1), ``KeyboardInterrupt`` on Ctrl-C."""
    tmp = None
    if arrays is None:
        tmp = tempfile.TemporaryDirectory(prefix="neurodyn-arrays-")
        arrays = tmp.name
    if not progress:
        options = dict(options, quiet=True)
    if callable(progress):
        bar = progress
    else:
        bar = _Progress(" ".join((name,) + subcommand)) if progress else None
    try:
        args = [str(s) for s in subcommand] + argv(options, arrays)
        _native.command(name, args, None if threads is None else int(threads), bar)
    finally:
        if isinstance(bar, _Progress):
            bar.close()
        if tmp is not None:
            tmp.cleanup()


def help(name):  # noqa: A001 - the binary's --help
    """The ``--help`` text of the binary ``name``: every flag and its default."""
    return _native.command_help(name)


def read_table(base):
    """The table ``base.parquet`` (or ``base.csv``) as a pandas DataFrame, or a dict of numpy
    arrays when pandas is not installed."""
    base = os.fspath(base)
    for ext in (".parquet", ".csv"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        if os.path.exists(base + ".parquet"):
            try:
                return pd.read_parquet(base + ".parquet")
            except ImportError:
                pass
        return pd.read_csv(base + ".csv")
    import csv

    with open(base + ".csv", newline="") as f:
        rows = list(csv.reader(f))
    cols = {}
    for j, name in enumerate(rows[0]):
        vals = [r[j] for r in rows[1:]]
        try:
            cols[name] = np.array([float(v) for v in vals])
        except ValueError:
            cols[name] = np.array(vals)
    return cols


def read_toml(path):
    """A TOML file as a dict (``tomllib``; ``tomli`` before Python 3.11)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib

    with open(path, "rb") as f:
        return tomllib.load(f)


class Checkpoint(os.PathLike):
    """A checkpoint file (``checkpoint.safetensors`` of ``train``, ``train-cnn`` or ``cordsnet
    train``). It is a path (``os.fspath``), so every analysis that takes ``checkpoint=`` takes it;
    ``tensors`` and ``metadata`` read the file."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise ValueError(f"invalid `checkpoint`: {self.path} is not a file")

    def __fspath__(self):
        return self.path

    def __str__(self):
        return self.path

    def __repr__(self):
        return f"Checkpoint({self.path!r})"

    def _read(self):
        from . import _arr

        d = _native.read_tensors(self.path)
        return {name: _arr(b, tuple(shape)) for name, (shape, b) in d["tensors"].items()}, dict(
            d["metadata"]
        )

    @property
    def tensors(self):
        """``{name: float64 array}`` for every tensor in the file."""
        return self._read()[0]

    @property
    def metadata(self):
        """The file's metadata: the configuration and the run state."""
        return self._read()[1]


class Run:
    """A training run's folder: ``metrics`` (one row per epoch), ``checkpoint``, ``config``."""

    def __init__(self, out):
        self.out = os.fspath(out)

    @property
    def metrics(self):
        return read_table(os.path.join(self.out, "metrics"))

    @property
    def checkpoint(self):
        return Checkpoint(os.path.join(self.out, "checkpoint.safetensors"))

    @property
    def config(self):
        return read_toml(os.path.join(self.out, "config.toml"))

    def __repr__(self):
        return f"Run({self.out!r})"
