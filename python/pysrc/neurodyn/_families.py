"""Training, spiking conversion, CordsNet and the CNN trainer from Python.

Each function runs its binary in this process (``_commands.command``) with the binary's flags
as keyword arguments and its defaults (``neurodyn.help("train")`` lists them), then reads the
files back: tables as pandas DataFrames, arrays as numpy. Runs that write an ``out`` folder are
resumable exactly as the binaries are: call again with the same ``out`` to continue.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from ._commands import Checkpoint, Run, command, read_table, read_toml

__all__ = [
    "train",
    "train_cnn",
    "cnn_predict",
    "spiking_grid",
    "spiking_simulate",
    "lyapunov_networks",
    "continuation_run",
    "cordsnet_train",
    "cordsnet_simulate",
    "cordsnet_steady_state",
    "cordsnet_spectrum",
    "cordsnet_analyze",
]


class _Out:
    """``out`` as given, or a temporary folder removed on exit (one-shot commands)."""

    def __init__(self, out):
        self.tmp = None if out is not None else tempfile.TemporaryDirectory(prefix="neurodyn-")
        self.path = os.fspath(out) if out is not None else self.tmp.name

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        if self.tmp is not None:
            self.tmp.cleanup()


def train(out, *, progress=True, threads=None, **options):
    """Train a recurrent cell as ``train`` does (BPTT + Adam; resumable from ``out``) and return
    the :class:`Run`: ``metrics`` (a DataFrame, one row per epoch), ``checkpoint`` (a
    :class:`Checkpoint` every analysis takes), ``config``.

    Options are ``train``'s flags: ``task`` (go-nogo, xor, mante, seq-digits, perm-digits,
    custom), ``cell`` (rate, gamma, anru, organics, lstm, gru), ``epochs``, ``steps``, ``batch``,
    ``lr``, ``schedule`` (``"step:20:0.7"``, …), ``weight_decay``, ``hidden``, ``device`` (cpu,
    gpu), ``seed``, ``kappa_max=(0.02, 0.005, 0.1)`` (the ORGaNICs rates; a tuple becomes
    ``Y,A,B``), …; ``from_=run_dir`` branches another run: its finished epochs continue in
    ``out`` under this call's learning rate, schedule, weight decay (flags that are Python
    keywords take a trailing underscore). For ``task="custom"`` give the arrays
    themselves: ``inputs`` (trials × T × N_in), ``targets`` (trials × T × C, or one label per
    trial with ``loss="cross-entropy"``), ``mask`` (trials × T or trials × T × C); they are kept
    in ``out`` (under a name that depends on their content) so that a resumed run sees them."""
    out = os.fspath(out)
    command("train", progress=progress, threads=threads, arrays=out, out=out, **options)
    return Run(out)


def train_cnn(out, *, progress=True, threads=None, **options):
    """Train a feed-forward network as ``train-cnn`` does (small AlexNet/VGG with divisive
    normalization, or the static ORGaNICs layer; resumable from ``out``) and return the
    :class:`Run`. Options are ``train-cnn``'s flags (``arch``, ``norm``, ``relu="off"``,
    ``epochs``, ``batch``, ``dataset``, ``data_dir``, …). Evaluate on your own images with
    :func:`cnn_predict`."""
    out = os.fspath(out)
    command("train-cnn", progress=progress, threads=threads, out=out, **options)
    return Run(out)


def cnn_predict(checkpoint, images):
    """Logits (``b × 10``) of a ``train-cnn`` checkpoint on ``images``: ``b × 28 × 28`` (or one
    ``28 × 28`` image) grey levels, uint8 in 0–255 or floats in [0, 1], standardised as in
    training. ``logits.argmax(1)`` are the predicted classes."""
    from . import _arr, _native

    a = np.asarray(images)
    if a.dtype == np.uint8:
        a = a.astype(np.float64) / 255.0
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != (28, 28):
        raise ValueError(f"invalid `images`: expected b × 28 × 28, got {a.shape}")
    b = a.shape[0]
    return _arr(_native.cnn_predict(os.fspath(checkpoint), a.tobytes(), b), (b, -1))


def spiking_grid(checkpoint, task, out=None, *, progress=True, threads=None, **options):
    """The λ grid search of ``spiking`` (Kim, Li & Sejnowski 2019): a trained rate network
    (``checkpoint``) as a LIF network with W_spk = λW, λ = 1/s, scored by ``trials`` seeded trials
    per value of s (``scaling="20:75:5"``; resumable from ``out``). Returns ``{"grid": DataFrame
    (scaling_factor, lambda, accuracy, correct, trials, mean_rate_hz), "summary": dict}`` — the
    summary names the chosen s and the rate network's own accuracy.

    ``shard="i/n"`` runs block i of n of the grid into ``out`` (shared by the shards: SLURM array
    tasks, Dask or submitit jobs); ``grid`` and ``summary`` are None until every value of s is
    done in some shard — the last shard, or a call without ``shard``, which runs what is missing,
    writes the report."""
    with _Out(out) as o:
        command("spiking", progress=progress, threads=threads, checkpoint=checkpoint, task=task,
                out=o, **options)
        if not os.path.exists(os.path.join(o, "summary.toml")):
            return {"grid": None, "summary": None}
        return {"grid": read_table(os.path.join(o, "grid")),
                "summary": read_toml(os.path.join(o, "summary.toml"))}


def spiking_simulate(checkpoint, task, scaling, out=None, *, trial=0, voltage=None,
                     threads=None, **options):
    """One seeded trial of the LIF network at s = ``scaling`` (``spiking --simulate``). Returns
    a dict: ``spike_units``, ``spike_steps``, ``spike_times`` (s) — one entry per spike, in time
    order — ``t`` and ``output`` (the LIF read-out at every step), ``rate`` (the rate network's
    output on the same input: a DataFrame with time_s, rate_output, lif_output), and with
    ``voltage=[units]`` ``voltage``: the membrane traces (steps × units, mV)."""
    with _Out(out) as o:
        command("spiking", progress=False, threads=threads, checkpoint=checkpoint, task=task,
                out=o, simulate=float(scaling), trial=int(trial),
                voltage=None if voltage is None else [int(u) for u in voltage], **options)
        spikes = read_table(os.path.join(o, "spikes"))
        output = read_table(os.path.join(o, "output"))
        res = {
            "spike_units": np.asarray(spikes["unit"], dtype=np.int64),
            "spike_steps": np.asarray(spikes["step"], dtype=np.int64),
            "spike_times": np.asarray(spikes["time_s"], dtype=np.float64),
            "t": np.asarray(output["time_s"], dtype=np.float64),
            "output": np.asarray(output["output"], dtype=np.float64),
            "rate": read_table(os.path.join(o, "rate_output.csv")),
        }
        if voltage is not None:
            v = read_table(os.path.join(o, "voltage"))
            res["voltage"] = np.column_stack([np.asarray(v[f"v{int(u)}_mV"]) for u in voltage])
        return res


def lyapunov_networks(out=None, *, progress=True, threads=None, **options):
    """Lyapunov spectra of many networks, one summary row each (``lyapunov --sweep-g`` over gains
    of one network, or ``--checkpoints`` over a list of training checkpoints): a DataFrame with
    the leading exponent, the Kaplan–Yorke dimension and the entropy per row. ``out``: the table's
    file (.csv or .parquet; default a temporary one). ``shard="i/n"`` computes block i of n of the
    rows only; the shards' tables concatenated in shard order (:func:`neurodyn.sweep.concat`) are
    the whole table."""
    tmp = _Out(None)
    with tmp as o:
        path = os.fspath(out) if out is not None else os.path.join(o, "networks.csv")
        command("lyapunov", progress=progress, threads=threads, out=path, **options)
        return read_table(path)


def continuation_run(out=None, *, progress=True, threads=None, **options):
    """``continuation`` as the binary runs it, on any source it takes — presets (``model=``),
    checkpoints (``checkpoint=``), the path between two checkpoints (``path=[a, b]``), ORGaNICs
    circuits — with its flags (``param``, ``from_``/``to`` as ``**{"from": 0, "to": 1}``,
    ``param2``/``from2``/``to2`` for fold and Hopf curves in two parameters, ``cycles=True``,
    ``input_pattern``, ``switch=True`` to follow the other branch at every branch point,
    ``spectrum="nearest:8"``). Returns a dict of DataFrames: ``branch``, ``bifurcations``, and when
    computed ``curves`` and ``codim2`` (two parameters), ``cycles``/``cycle_events`` and
    ``switched`` (the switched branches: ``branch_point``, ``half``, then the branch columns)."""
    with _Out(out) as o:
        command("continuation", progress=progress, threads=threads, out=o, **options)
        res = {"branch": read_table(os.path.join(o, "branch")),
               "bifurcations": read_table(os.path.join(o, "bifurcations.csv"))}
        for name, base in (("curves", "curves"), ("codim2", "codim2.csv"), ("cycles", "cycles"),
                           ("cycle_events", "cycle_events.csv"), ("switched", "switched")):
            stem = base[:-4] if base.endswith(".csv") else base
            if os.path.exists(os.path.join(o, stem + ".csv")):
                res[name] = read_table(os.path.join(o, base))
        return res


def cordsnet_train(out, *, progress=True, threads=None, **options):
    """Train a CordsNet (Soo et al. 2024) as ``cordsnet train`` does (linear stage, PReLU anneal,
    ReLU fine-tune; resumable from ``out``) and return the :class:`Run`."""
    out = os.fspath(out)
    command("cordsnet", "train", progress=progress, threads=threads, out=out, **options)
    return Run(out)


def _one_table(sub, options, name, threads, progress=False):
    with _Out(None) as o:
        path = os.path.join(o, name)
        command("cordsnet", sub, progress=progress, threads=threads, out=path, **options)
        return read_table(path)


def cordsnet_simulate(*, image=None, mnist=None, weights=None, threads=None, **options):
    """The CordsNet protocol (``cordsnet simulate``): ``spont`` spontaneous steps, then ``stim``
    steps with the image (``image``: an array C × S × S or S × S, already normalised; or
    ``mnist=k``, test image k of the bundled slice). ``weights``: a checkpoint (a
    :class:`Checkpoint` or path; default: seeded random weights of ``arch``). Returns a DataFrame:
    per step each layer's summed rate."""
    return _one_table("simulate", dict(options, image=image, mnist=mnist, weights=weights),
                      "traj.csv", threads)


def cordsnet_steady_state(*, image=None, mnist=None, weights=None, threads=None, **options):
    """The stimulus-driven steady state by Newton–Krylov and the leading eigenvalues of each
    layer's D·K^rec there (``cordsnet steady-state``): a DataFrame layer, re, im, residual."""
    return _one_table("steady-state", dict(options, image=image, mnist=mnist, weights=weights),
                      "steady.csv", threads)


def cordsnet_spectrum(kernel, size, *, threads=None, **options):
    """Ritz values of the stride-1 zero-padded convolution with ``kernel`` (C × C × k × k) on an
    H × W grid ``size`` (``cordsnet spectrum``): a DataFrame re, im, residual."""
    return _one_table("spectrum", dict(options, kernel=np.asarray(kernel, dtype=np.float64),
                                       size=tuple(int(s) for s in size)), "ritz.csv", threads)


def cordsnet_analyze(checkpoint, out=None, *, progress=True, threads=None, **options):
    """Dissect a trained CordsNet image by image (``cordsnet analyze``): steady states, the
    leading spectrum of each layer there, the stimulus phase's largest Lyapunov exponent.
    Returns ``{"images": DataFrame, "spectra": DataFrame}``."""
    with _Out(out) as o:
        command("cordsnet", "analyze", progress=progress, threads=threads,
                checkpoint=checkpoint, out=o, **options)
        return {"images": read_table(os.path.join(o, "images.csv")),
                "spectra": read_table(os.path.join(o, "spectra.csv"))}


def load(path):
    """A checkpoint file as a :class:`Checkpoint`."""
    return Checkpoint(path)


def _append_help():
    """Each function's docstring ends with its binary's ``--help``: every flag and its default."""
    from ._commands import help as _help

    for f, name in ((train, "train"), (train_cnn, "train-cnn"), (spiking_grid, "spiking"),
                    (cordsnet_train, "cordsnet")):
        try:
            f.__doc__ = (f.__doc__ or "") + f"\n\n    The flags of ``{name}``::\n\n" + "\n".join(
                "        " + line for line in _help(name).splitlines())
        except Exception:  # a docstring is not worth failing the import for
            pass


_append_help()
