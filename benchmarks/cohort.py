"""Archive scoring on dask.distributed: throughput, scaling, overhead and memory (issue 15).

Simulated 8-h nights (reduced montage: EEG C4-M1, EOG E1-M2, EMG chin at 128 Hz, about 26 MB
each as EDF, written once by ``dreamnet simulate`` into a cache folder) are scored the way
``dreamnet score DIR --out OUT --scheduler ADDR --force`` scores them
(:func:`staging.night.archive.run_archive`), on a local cluster of 1 and then 2 single-threaded
worker processes started (and warmed up) beforehand. It prints:

1. per-night compute: each night scored in this process by the archive's own task
   (:func:`staging.night.archive.score_night`: hash, score, CSV, record), single-threaded;
2. throughput in nights per minute with 1 and 2 workers and their ratio (target >= 1.8x on 2
   cores), and that the CSVs of both runs are the same bytes;
3. scheduler overhead per night: the round trip of an empty task, the cost per task of many
   empty tasks in flight, and the 1-worker wall time minus the summed per-night compute;
4. peak memory (RSS) of each worker;
5. what that predicts for 10,000 nights on 100 workers (time, read bandwidth, memory).

60 nights by default: with 0.4 s of CPU per night a 20-night run lasts under 5 s on 2 workers,
and the start and the last night's tail then weigh about 10 % of the ratio; 60 nights measure
the steady throughput an archive sees. The nights are simulated once (about 7 s each) and kept.

Run from the repository root (the machine otherwise idle: the figures are wall times)::

    .venv/bin/python benchmarks/cohort.py               # 60 nights of 8 h
    .venv/bin/python benchmarks/cohort.py --quick       # 4 nights of 1 h
    .venv/bin/python benchmarks/cohort.py --nights 8
"""

from __future__ import annotations

import os

# single-threaded numerics in this process too, as in the workers (dask's nanny sets these):
# the in-process per-night compute is then the cost of one night on one core
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from staging.cli import main as dreamnet  # noqa: E402
from staging.night.archive import (  # noqa: E402
    dask_client,
    model_version,
    plan,
    run_archive,
    score_night,
)
from staging.stager.model import resolve_model  # noqa: E402

SEED_BASE = 30000
SFREQ = 128
OPTIONS = {"mode": "offline", "eeg": None, "eog": None, "emg": None, "allow_truncated": False}
PREDICT_NIGHTS, PREDICT_WORKERS = 10_000, 100


def make_nights(cache: Path, n: int, hours: float) -> list[Path]:
    """Simulate ``n`` nights into ``cache`` (kept between runs); return their paths."""
    folder = cache / f"{hours:g}h_{SFREQ}Hz_reduced"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        path = folder / f"night{k:03d}.edf"
        if not path.exists():
            t0 = time.perf_counter()
            argv = ["simulate", "--duration", f"{hours:g}h", "--seed", str(SEED_BASE + k)]
            argv += ["--montage", "reduced", "--sfreq", str(SFREQ), "--out", str(path), "--quiet"]
            if dreamnet(argv) != 0:
                raise SystemExit(f"simulating {path} failed")
            print(f"  simulated {path.name} in {time.perf_counter() - t0:.1f} s", flush=True)
        paths.append(path)
    return paths


def per_night_compute(paths: list[Path], out: Path) -> list[float]:
    """Seconds of each night scored in this process by the archive's task."""
    model = resolve_model(None)
    jobs = plan(paths, out, model=None, model_version=model_version(model), options=OPTIONS,
                report=False)  # fmt: skip
    score_night(jobs[0])  # warm: model loaded, kernels compiled or read from the disk cache
    times = []
    for job in jobs:
        t0 = time.perf_counter()
        row = score_night(job)
        times.append(time.perf_counter() - t0)
        if row["status"] != "ok":
            raise SystemExit(f"{job.shown}: {row['error']}")
    return times


def _warm() -> int:
    """Run on each worker before timing: imports and the model loaded once."""
    from staging.stager.model import resolve_model as rm
    from staging.stager.score import score  # noqa: F401

    rm(None)
    return os.getpid()


def _noop(x):
    return x


def _cpu_s() -> float:
    """CPU seconds (user + system) used so far by this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss() -> int:
    """Peak resident memory of this process, bytes (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_with_workers(n_workers: int, paths: list[Path], warm: list[Path], out: Path) -> dict:
    """Score every night on a fresh local cluster of ``n_workers``; return the figures."""
    t0 = time.perf_counter()
    with dask_client(n_workers, None) as client:  # the cluster `dreamnet score --jobs N` starts
        address = client.scheduler.address
        client.run(_warm)
        # one short night per worker: the kernels read from numba's cache in every process
        run_archive([str(p) for p in warm], str(out / "warm"), scheduler=address,
                    options=OPTIONS, force=True)  # fmt: skip
        startup = time.perf_counter() - t0
        cpu0, own0 = sum(client.run(_cpu_s).values()), _cpu_s()
        t1 = time.perf_counter()
        summary, _ = run_archive(
            [str(paths[0].parent)],
            str(out / f"w{n_workers}"),
            scheduler=address,
            options=OPTIONS,
            force=True,
        )
        wall = time.perf_counter() - t1
        cores = (sum(client.run(_cpu_s).values()) - cpu0) / wall
        own = (_cpu_s() - own0) / wall  # the client and the scheduler (this process)
        if summary.failed or summary.scored != len(paths):
            raise SystemExit(f"{n_workers} workers: {summary.line(out)}")
        rss = client.run(_peak_rss)
        overhead = {}
        if n_workers == max(ARGS.workers):
            client.gather(client.map(_noop, range(50), pure=False))  # warm the path
            t = time.perf_counter()
            for k in range(50):
                client.submit(_noop, k, pure=False).result()
            overhead["round_trip_s"] = (time.perf_counter() - t) / 50
            m = 2000
            t = time.perf_counter()
            client.gather(client.map(_noop, range(m), pure=False))
            overhead["per_task_s"] = (time.perf_counter() - t) / m
    return {"startup": startup, "wall": wall, "rss": rss, "cores": cores, "own": own, **overhead}


def main(argv=None) -> int:
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nights", type=int, default=60, help="nights (default 60)")
    p.add_argument("--hours", type=float, default=8.0, help="length of a night (default 8)")
    p.add_argument("--quick", action="store_true", help="4 nights of 1 h")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "dreamnet-cohort-bench"),
                   help="folder of the simulated nights, kept between runs")  # fmt: skip
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="default: 1 2")
    ARGS = p.parse_args(argv)
    if ARGS.quick:
        ARGS.nights, ARGS.hours = 4, 1.0
    cache = Path(ARGS.cache)
    load = os.getloadavg()[0]
    print(f"load average before the run: {load:.2f} on {os.cpu_count()} cores (other work "
          "running shares the cores: the ratio needs an idle machine)")  # fmt: skip
    print(f"== {ARGS.nights} simulated nights of {ARGS.hours:g} h (reduced montage, {SFREQ} Hz) ==")
    paths = make_nights(cache, ARGS.nights, ARGS.hours)
    warm = make_nights(cache, max(ARGS.workers), 0.25)
    size = sum(p.stat().st_size for p in paths) / len(paths)
    print(f"  {cache}: {size / 1e6:.1f} MB per night\n")
    tmp = Path(tempfile.mkdtemp(prefix="dreamnet-cohort-"))
    try:
        times = per_night_compute(paths, tmp / "serial")
        c = sum(times) / len(times)
        print(f"per-night compute, one core, in process: mean {c:.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}); sum {sum(times):.1f} s")  # fmt: skip
        res = {}
        for k in ARGS.workers:
            res[k] = r = run_with_workers(k, paths, warm, tmp)
            rate = ARGS.nights / r["wall"] * 60
            peak = max(r["rss"].values()) / 2**20
            print(
                f"{k} worker(s): {r['wall']:6.1f} s for {ARGS.nights} nights = {rate:6.1f} "
                f"nights/min; workers busy {r['cores']:.2f} cores on average; cluster start "
                f"+ warm-up {r['startup']:.1f} s; peak RSS per worker {peak:.0f} MiB"
            )
        ks = sorted(res)
        lo, hi = ks[0], ks[-1]
        ratio = res[lo]["wall"] / res[hi]["wall"]
        print(f"ratio {hi} vs {lo} worker(s): {ratio:.2f}x (target >= 1.8x for 2 vs 1 on 2 cores)")
        # CPU per night of the workers, and of workers + client + scheduler: on `hi` free cores
        # `hi` workers are bound by all of it, `lo` workers by their own CPU
        w = {k: res[k]["cores"] * res[k]["wall"] / ARGS.nights for k in ks}
        tot = {k: (res[k]["cores"] + res[k]["own"]) * res[k]["wall"] / ARGS.nights for k in ks}
        projected = min(hi / w[hi], hi / tot[hi]) / (lo / w[lo])
        print(
            f"CPU per night: workers {w[lo]:.2f} s ({lo}) / {w[hi]:.2f} s ({hi}); with the client "
            f"and scheduler {tot[lo]:.2f} s / {tot[hi]:.2f} s; the workers were busy "
            f"{res[hi]['cores']:.2f} of {hi} cores: on {hi} free cores the ratio would be "
            f"{projected:.2f}x"
        )
        same = all(
            (tmp / f"w{lo}" / f"{pth.stem}.csv").read_bytes()
            == (tmp / f"w{hi}" / f"{pth.stem}.csv").read_bytes()
            for pth in paths
        )
        print(f"CSV bytes identical across runs: {same}")
        r = res[hi]
        wall1 = res[lo]["wall"] * lo
        per_night_overhead = (wall1 - sum(times)) / ARGS.nights
        print(
            f"scheduler overhead: empty-task round trip {r['round_trip_s'] * 1e3:.1f} ms; "
            f"{r['per_task_s'] * 1e3:.2f} ms per task with 2000 in flight; "
            f"{lo}-worker wall minus summed compute: {per_night_overhead * 1e3:.0f} ms per night"
        )
        # prediction: a worker with a core of its own costs what the narrowest run measured
        # (wall per night, overhead included); the scheduler handles one task at a time
        per_worker_night = res[lo]["wall"] * lo / ARGS.nights
        t_pred = PREDICT_NIGHTS * max(per_worker_night / PREDICT_WORKERS, r["per_task_s"])
        peak = max(r["rss"].values())
        print(
            f"\nprediction, {PREDICT_NIGHTS:,} such nights on {PREDICT_WORKERS} workers "
            f"(one core each, {per_worker_night:.2f} s per night per worker as measured with "
            f"{lo}, "
            f"scheduler {r['per_task_s'] * 1e3:.2f} ms per task): "
            f"{t_pred / 60:.1f} min, reading {PREDICT_NIGHTS * size / t_pred / 1e6:.0f} MB/s "
            f"from the shared file system, {PREDICT_WORKERS * peak / 2**30:.1f} GiB of worker "
            f"memory; the scheduler alone would take {PREDICT_NIGHTS * r['per_task_s']:.0f} s"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
