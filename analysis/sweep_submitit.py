"""The ORGaNICs stability sweep as one submitit job per shard, then merged (Python's way to a SLURM
array; ``--local`` runs the same jobs as local processes):

    pip install ./python submitit
    python analysis/sweep_submitit.py --preset full --shards 64 --out out/sweep-full --partition cpu
    python analysis/sweep_submitit.py --config models/sweep-default.toml --shards 4 --local

Each job runs ``neurodyn.sweep.run_shard`` into the shared ``--out`` folder; a job that SLURM
requeues or that you resubmit continues from its shard's journal. The merged table equals a
one-process run's, byte for byte.
"""
import argparse
import functools
import os

import submitit

import neurodyn.sweep as sw


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = p.add_mutually_exclusive_group()
    which.add_argument("--config", help="a sweep TOML file")
    which.add_argument("--preset", default="default", help="default or full")
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--out", default="out/sweep")
    p.add_argument("--cpus", type=int, default=4, help="cores per job")
    p.add_argument("--partition", help="the SLURM partition")
    p.add_argument("--timeout-min", type=int, default=120)
    p.add_argument("--local", action="store_true", help="local processes instead of SLURM")
    a = p.parse_args(argv)
    config = a.config or a.preset
    shards = sw.shards(config, a.shards)
    ex = submitit.AutoExecutor(folder=os.path.join(a.out, "submitit"),
                               cluster="local" if a.local else None)
    ex.update_parameters(timeout_min=a.timeout_min, cpus_per_task=a.cpus)
    if a.partition and not a.local:
        ex.update_parameters(slurm_partition=a.partition)
    n = len(shards)
    run = functools.partial(sw.run_shard, threads=a.cpus)
    jobs = ex.map_array(run, [config] * n, shards, [a.out] * n)
    trials = [j.result() for j in jobs]
    table = sw.merge(a.out)
    print(f"{n} shards, {sum(trials)} trials -> {a.out}/results.parquet ({len(table)} rows)")
    return table


if __name__ == "__main__":
    main()
