"""The stability sweep split into shards on existing engines (a loop, Dask's LocalCluster with real
worker processes — one of them killed mid-shard —, submitit's local executor): the merged table
equals the one-process run's byte for byte."""

import os
import sys
from pathlib import Path

import pytest

import neurodyn as nd
import neurodyn.sweep as sw

ROOT = Path(__file__).resolve().parents[2]

SMALL = """
n = 30
variant = "unrectified"
matrix = "goe_symmetric"
mu = 0.0
delta_min = 0.05
delta_max = 1.5
delta_num = 3
delta_scale = "log"
input_min = 0.01
input_max = 1.0
input_num = 2
input_scale = "log"
input_type = "delocalized"
trials = 6
sigma = 0.1
b0 = 1.0
b1 = 1.0
tau_y = 0.002
tau_a = 0.002
initial = "first_order"
max_chunks = 6
seed = 5
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    table = sw.run(SMALL, out, threads=1, progress=False)
    assert len(table) == 3 * 2 * 6
    return (out / "results.csv").read_bytes()


def test_shards_in_a_loop_merge_to_the_one_process_table(tmp_path, reference):
    assert sw.trials(SMALL) == 36
    shards = sw.shards(SMALL, 5)
    assert shards == ["0/5", "1/5", "2/5", "3/5", "4/5"]
    counts = [sw.run_shard(SMALL, s, tmp_path, threads=2) for s in shards]
    assert sorted(counts) == [7, 7, 7, 7, 8]
    table = sw.merge(tmp_path)
    assert (tmp_path / "results.csv").read_bytes() == reference
    assert len(table) == 36 and table["job"].is_unique
    # The one-call form is the same sweep.
    assert nd.stability_sweep(SMALL, threads=1, progress=False).equals(table)
    with pytest.raises(ValueError, match="`n`"):
        sw.shards(SMALL, 37)


def test_merge_names_the_unfinished_shards(tmp_path):
    sw.run_shard(SMALL, "0/3", tmp_path, threads=1)
    with pytest.raises(ValueError, match="12 of 36 trials.*missing shards"):
        sw.merge(tmp_path)
    assert not (tmp_path / "results.csv").exists()


def _shard_dying_once(config, shard, out, marker):
    """run_shard, except that the first attempt at shard 1 kills its worker process once it has
    journalled a trial (as a node lost mid-job)."""
    import neurodyn.sweep as sw

    def die_mid_shard(pos, length, msg):
        if pos >= 1 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)

    progress = die_mid_shard if shard == "1/4" else False
    return sw.run_shard(config, shard, out, threads=1, progress=progress)


def test_dask_local_cluster_with_a_killed_worker_equals_the_one_process_table(tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "killed-once"
    out = tmp_path / "sweep"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        shards = sw.shards(SMALL, 4)
        futures = client.map(_shard_dying_once, [SMALL] * 4, shards, [str(out)] * 4,
                             [str(marker)] * 4, pure=False)
        counts = client.gather(futures)
    assert marker.exists(), "the worker was not killed"
    assert sorted(counts) == [9, 9, 9, 9]
    table = sw.merge(out)
    assert (out / "results.csv").read_bytes() == reference
    assert table["job"].is_unique


def test_the_submitit_example_runs_local_jobs(tmp_path, reference):
    pytest.importorskip("submitit")
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)
    sys.path.insert(0, str(ROOT / "analysis"))
    try:
        import sweep_submitit
    finally:
        sys.path.pop(0)
    out = tmp_path / "sub"
    table = sweep_submitit.main(["--config", str(cfg), "--shards", "2", "--cpus", "1",
                                 "--out", str(out), "--local"])
    assert len(table) == 36
    assert (out / "results.csv").read_bytes() == reference


def test_spiking_grid_and_lyapunov_rows_in_shards(tmp_path):
    ck = ROOT / "models" / "spiking" / "xor-rate-n100.safetensors"
    opts = dict(trials=3, scaling="20:40:5", progress=False)
    one = nd.spiking_grid(ck, "xor", tmp_path / "one", **opts)
    for i in range(3):
        part = nd.spiking_grid(ck, "xor", tmp_path / "sh", shard=f"{i}/3", **opts)
        assert (part["grid"] is None) == (i < 2)
    assert part["grid"].equals(one["grid"]) and part["summary"] == one["summary"]

    gains = "0.5,1,1.5,2,3"
    lyap = dict(map="tanh", sweep_g=gains, steps=200, k=10, progress=False)
    whole = nd.lyapunov_networks(tmp_path / "all.csv", **lyap)
    parts = [nd.lyapunov_networks(tmp_path / f"p{i}.csv", shard=f"{i}/3", **lyap)
             for i in range(3)]
    assert [len(p) for p in parts] == [2, 2, 1]
    assert sw.concat(parts).equals(whole)
    assert sw.concat([tmp_path / f"p{i}.csv" for i in range(3)]).equals(whole)
