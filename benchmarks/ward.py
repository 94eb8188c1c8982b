"""Benchmark of ``dreamnet ward`` (issue 16).

1. **Headless ward**: N simulated beds (mixed profiles), H-hour nights, ``--speed max``, the
   beds spread over W worker processes: wall time, CPU of the ward and its workers, CPU per
   bed-hour, and memory: each worker's RSS after its beds are built, at the half-way mark and
   at the end (growth per bed: the monitoring, the simulation and the allocator together; the
   memory target's figure, beyond the simulation, is part 4's). Target for 64 beds x 8 h on 2
   cores: < 10 min wall, < 2 MiB per bed beyond the simulation.
   The run is the command's own code (``build_ward`` + the headless loop) in a fresh process.
2. **Live view at ``--speed 1``**: ``dreamnet ward --beds 16`` in a pseudo-terminal
   (160 x 48) for S seconds after a warm-up; CPU of the ward and its workers as a share of
   one core. Target < 25 %.
3. **Disturbance detection**: seeded wards with room noise (``--faults noise=K``) and the same
   wards without: noises injected, disturbances found (matched within 30 s), missed, and
   disturbances reported where no noise was.
4. **Where a bed's memory goes**: one bed of the ward (in a fresh process, under
   ``tracemalloc``, after another bed ran 10 minutes in it: what a worker loads once for all
   its beds, numba kernels first, is not the bed's), the Python and numpy memory it holds after
   its first minute and at the end of its night, beyond what opening it took, by the package
   that allocated it (the innermost frame of this repository): the simulated sleeper is the
   simulation, the rest is the monitoring. What grows with the night is what a bed keeps per
   epoch or per block.

Run from the repository root::

    .venv/bin/python benchmarks/ward.py                 # 64 beds x 1 h, 20 s view, 3 wards
    .venv/bin/python benchmarks/ward.py --beds 64 --hours 8   # the full target (about 25 min)
    .venv/bin/python benchmarks/ward.py --quick         # 8 beds x 10 min, 10 s view, 1 ward
    .venv/bin/python benchmarks/ward.py --skip night,view,noise --mem-hours 2   # memory only

Figures are printed as markdown tables; CPU is what the processes used (``getrusage``,
``/proc``), wall what the clock saw: on a shared machine the two differ.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._proc import cpu_s, status_kib, tty_cpu  # noqa: E402
from headset.lifeline import child_popen_kwargs  # noqa: E402

TARGET_WALL_64x8_S = 600.0
TARGET_MIB_PER_BED = 2.0
TARGET_VIEW_CPU = 0.25


# --------------------------------------------------------------------------------------------
# 1. headless ward (child process)
# --------------------------------------------------------------------------------------------


def ward_child(beds: int, hours: float, workers: int) -> None:
    """Run a headless ward as the command does; print one JSON line of measurements."""
    t0 = time.perf_counter()
    from staging.ward.app import ROUND_S, WardOptions, build_ward

    opts = WardOptions(
        n_beds=beds, seed=1, speed=None, duration_s=hours * 3600.0, tui=False, workers=workers
    )
    ward = build_ward(opts)
    t_built = time.perf_counter()
    pids = [g.pid for g in ward.groups if hasattr(g, "pid")] or [os.getpid()]
    per_worker = [len(g.names) if hasattr(g, "names") else beds for g in ward.groups]
    rss = {"built": [(status_kib(p, "VmRSS") or 0) / 1024 for p in pids]}
    half = hours * 3600.0 / 2
    cpu_half = cpu_workers_end = 0.0
    rounds = 0
    while ward.step(ROUND_S):  # the last round finishes the ward: the workers end
        rounds += 1
        if "half" not in rss and ward.t >= half:
            rss["half"] = [(status_kib(p, "VmRSS") or 0) / 1024 for p in pids]
            cpu_half = sum(cpu_s(p) for p in pids)
        if rounds % 12 == 0:  # every minute of session time: the peak so far, the CPU
            rss["end"] = [(status_kib(p, "VmHWM") or 0) / 1024 for p in pids]
            cpu_workers_end = sum(cpu_s(p) for p in pids)
    t_run = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ruc = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "build_s": t_built - t0,
                "run_s": t_run - t_built,
                "cpu_self_s": ru.ru_utime + ru.ru_stime,
                "cpu_children_s": ruc.ru_utime + ruc.ru_stime,
                "cpu_workers_half_s": cpu_half,
                "cpu_workers_end_s": cpu_workers_end,
                "rss": rss,
                "beds_per_worker": per_worker,
                "disturbances": ward.counts["disturbance"],
            }
        )
    )


def bench_headless(beds: int, hours: float, workers: int) -> dict:
    # the first run after an install or a change compiles the numba kernels into their cache
    # (in every worker, about 100 MiB of RSS each): a short ward first, so the measured one
    # loads them as every later run does
    warm = [sys.executable, __file__, "--ward-child", "1", "0.05", "1"]
    subprocess.run(warm, capture_output=True, cwd=ROOT, check=True, **child_popen_kwargs())
    cmd = [sys.executable, __file__, "--ward-child", str(beds), str(hours), str(workers)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **child_popen_kwargs())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ward run failed:\n{proc.stderr}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r.update(wall_s=wall, beds=beds, hours=hours, workers=workers)
    return r


def print_headless(r: dict) -> None:
    b, h, w = r["beds"], r["hours"], r["workers"]
    print(f"## Headless ward: {b} beds x {h:g} h, --speed max, {w} worker processes\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| wall time, whole process | {r['wall_s']:.0f} s | |")
    print(f"| of which start-up (imports, {b} beds opened) | {r['build_s']:.1f} s | |")
    cpu = r["cpu_self_s"] + r["cpu_children_s"]
    print(
        f"| CPU: ward / workers / total | {r['cpu_self_s']:.0f} s / {r['cpu_children_s']:.0f} s"
        f" / {cpu:.0f} s | |"
    )
    per_bed_h = cpu / (b * h)
    print(f"| CPU per bed-hour | {per_bed_h:.2f} s | |")
    second_half = (r["cpu_workers_end_s"] - r["cpu_workers_half_s"]) / (b * h / 2)
    print(f"| CPU per bed-hour, second half of the night (warm) | {second_half:.2f} s | |")
    wall_64x8 = second_half * 64 * 8 / 2 + r["build_s"]
    ok = "ok" if wall_64x8 < TARGET_WALL_64x8_S else "MISSED"
    print(
        f"| 64 beds x 8 h on 2 cores, from the warm rate | {wall_64x8 / 60:.1f} min | "
        f"< {TARGET_WALL_64x8_S / 60:.0f} min ({ok}) |"
    )
    n = r["beds_per_worker"]
    for key, label in (("built", "beds built"), ("half", "half-way"), ("end", "end (peak)")):
        vals = " / ".join(f"{v:.0f}" for v in r["rss"].get(key, []))
        print(f"| worker RSS at {label} | {vals} MiB | |")
    growth = [
        (e - s) / k for s, e, k in zip(r["rss"]["built"], r["rss"]["end"], n) if k
    ]  # fmt: skip
    print(
        f"| worker RSS growth per bed after opening (the simulation and the allocator included; "
        f"the target's figure is part 4's) | {max(growth):.2f} MiB | |"
    )
    built = [v / k for v, k in zip(r["rss"]["built"], n) if k]
    print(f"| worker RSS per bed once opened (incl. the simulation) | {max(built):.1f} MiB | |")
    print(f"| disturbances reported (no room noise) | {r['disturbances']} | 0 |\n")


#: Packages a bed's memory is attributed to, first match wins (paths in this repository).
MEM_PACKAGES = (
    ("headset/sleeper/", "simulated sleeper (the simulation)"),
    ("staging/stager/", "online stager"),
    ("staging/closedloop/", "closed-loop detectors and policy"),
    ("dsp/", "dsp (filters, ECG)"),
    ("headset/", "headset I/O (device, firmware, protocol, driver, recorder)"),
    ("staging/monitor/", "monitored session and pipeline"),
    ("staging/ward/", "ward"),
)


def mem_child(hours: float) -> None:
    """One bed of a ward under tracemalloc; print one JSON line: bytes held by package."""
    import tracemalloc

    from staging.ward.app import ROUND_S, WardOptions, build_ward

    # a first bed for 10 minutes loads what a worker loads once for all its beds (numba
    # kernels, scipy's filter designs): not one bed's memory
    warm = build_ward(WardOptions(n_beds=1, seed=2, speed=None, duration_s=600.0, tui=False,
                                  workers=0))  # fmt: skip
    while warm.step(ROUND_S):
        pass
    del warm
    ward = build_ward(WardOptions(n_beds=1, seed=1, speed=None, duration_s=hours * 3600.0,
                                  tui=False, workers=0))  # fmt: skip
    tracemalloc.start(16)
    root = str(ROOT) + os.sep

    def held() -> dict[str, int]:
        out: dict[str, int] = {}
        for stat in tracemalloc.take_snapshot().statistics("traceback"):
            path = next((f.filename[len(root) :] for f in reversed(stat.traceback)
                         if f.filename.startswith(root) and "/.venv/" not in f.filename
                         and "/benchmarks/" not in f.filename), "")  # fmt: skip
            name = next((label for pre, label in MEM_PACKAGES if path.startswith(pre)), "other")
            out[name] = out.get(name, 0) + stat.size
        return out

    marks = {}
    while ward.step(ROUND_S):
        if "first" not in marks and ward.t >= 60.0:
            marks["first"] = held()
        if ward.t >= hours * 3600.0 - ROUND_S:  # the last round: before the bed finishes
            marks["end"] = held()
    print(json.dumps({"hours": hours, **marks}))


def bench_memory(hours: float) -> dict:
    cmd = [sys.executable, __file__, "--mem-child", str(hours)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **child_popen_kwargs())
    if proc.returncode != 0:
        raise SystemExit(f"memory run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_memory(r: dict) -> None:
    h = r["hours"]
    print(f"## Where one bed's memory goes (tracemalloc, 1 bed x {h:g} h, beyond opening it)\n")
    print("| allocated by | after 1 min | at the end | growth per hour after the first minute |")
    print("|---|---|---|---|")
    names = [label for _, label in MEM_PACKAGES] + ["other"]
    first, end = r["first"], r["end"]
    for name in [*names, "total"]:
        a = sum(first.values()) if name == "total" else first.get(name, 0)
        b = sum(end.values()) if name == "total" else end.get(name, 0)
        if name != "total" and not (a or b):
            continue
        rate = (b - a) / max(h - 1 / 60, 1e-9)
        print(f"| {name} | {a / 1024:.0f} KiB | {b / 1024:.0f} KiB | {rate / 1024:+.0f} KiB |")
    sim = MEM_PACKAGES[0][1]
    beyond = sum(v for k, v in end.items() if k != sim) / 2**20
    ok = "ok" if beyond < TARGET_MIB_PER_BED else "MISSED"
    print(f"\nbeyond the simulation at the end of the {h:g}-h night: {beyond:.2f} MiB "
          f"(target < {TARGET_MIB_PER_BED:g} MiB: {ok})\n")  # fmt: skip


# --------------------------------------------------------------------------------------------
# 2. live view
# --------------------------------------------------------------------------------------------


def bench_view(beds: int, seconds: float) -> dict | None:
    args = ["-m", "staging.cli", "ward", "--beds", str(beds), "--speed", "1"]
    r = tty_cpu(args, ROOT, (48, 160), warmup_s=15.0, seconds=seconds)  # start-up: beds opened
    if r is None:
        return None
    r.pop("text")
    return {"beds": beds, **r}


def print_view(r: dict) -> None:
    print(f"## Live ward view: {r['beds']} beds at --speed 1 (160 x 48)\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    ok = "ok" if r["cpu_share"] < TARGET_VIEW_CPU else "MISSED"
    print(
        f"| CPU of the ward + {r['procs'] - 1} workers, share of one core | "
        f"{r['cpu_share']:.1%} | < {TARGET_VIEW_CPU:.0%} ({ok}) |"
    )
    print(f"| measured over | {r['wall']:.0f} s | |\n")


# --------------------------------------------------------------------------------------------
# 3. disturbance detection
# --------------------------------------------------------------------------------------------


def bench_disturbance(seeds, beds: int, hours: float, noise: int, workers: int) -> list[dict]:
    from staging.ward.app import WardOptions, build_ward, run_headless

    rows = []
    for seed in seeds:
        out = {}
        for label, faults in (("noise", f"noise={noise}"), ("quiet", None)):
            opts = WardOptions(n_beds=beds, seed=seed, speed=None, duration_s=hours * 3600.0,
                               tui=False, workers=workers, faults=faults)  # fmt: skip
            ward = build_ward(opts)
            run_headless(ward, None)
            found = [d.onset for d in ward.detector.found]
            out[label] = (list(ward.noise), found, ward.detector.found)
        noises, found, ds = out["noise"]
        hit = [t for t in noises if any(t - 5.0 <= f <= t + 30.0 for f in found)]
        false = [f for f in found if not any(t - 5.0 <= f <= t + 30.0 for t in noises)]
        beds_hit = [len(d.beds) for d in ds]
        rows.append(
            {
                "seed": seed,
                "injected": len(noises),
                "found": len(hit),
                "false_with_noise": len(false),
                "false_quiet": len(out["quiet"][1]),
                "beds_per_disturbance": beds_hit,
            }
        )
    return rows


def print_disturbance(rows: list[dict], beds: int, hours: float, noise: int) -> None:
    print(
        f"## Disturbance detection: wards of {beds} beds x {hours:g} h, noise={noise}, "
        "and the same wards without noise\n"
    )
    print("| seed | room noises | found | missed | false (noisy ward) | false (quiet ward) "
          "| beds aroused per disturbance |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['injected']} | {r['found']} | {r['injected'] - r['found']} | "
            f"{r['false_with_noise']} | {r['false_quiet']} | "
            f"{', '.join(map(str, r['beds_per_disturbance']))} |"
        )
    print()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="8 beds x 10 min, 10 s view, 1 ward")
    p.add_argument("--beds", type=int, default=64, help="beds of the headless run (64)")
    p.add_argument("--hours", type=float, default=1.0, help="night of the headless run (1 h)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    p.add_argument("--skip", default="",
                   help="comma-separated parts to skip: night,view,noise,mem")  # fmt: skip
    p.add_argument("--mem-hours", type=float, default=1.0,
                   help="night of the one-bed memory run (1 h)")  # fmt: skip
    p.add_argument("--ward-child", nargs=3, default=None, help=argparse.SUPPRESS)
    p.add_argument("--mem-child", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.ward_child is not None:
        b, h, w = args.ward_child
        ward_child(int(b), float(h), int(w))
        return 0
    if args.mem_child is not None:
        mem_child(args.mem_child)
        return 0
    skip = set(filter(None, args.skip.split(",")))
    print(f"# dreamnet ward benchmark ({'quick' if args.quick else 'full'})\n")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n")
    if "night" not in skip:
        beds, hours = (8, 1 / 6) if args.quick else (args.beds, args.hours)
        print_headless(bench_headless(beds, hours, args.workers))
    if "view" not in skip:
        r = bench_view(16, 10.0 if args.quick else 20.0)
        if r:
            print_view(r)
    if "noise" not in skip:
        seeds, beds, hours, noise = ([1], 6, 0.5, 2) if args.quick else ([1, 2, 3], 8, 1.5, 3)
        print_disturbance(bench_disturbance(seeds, beds, hours, noise, args.workers), beds,
                          hours, noise)  # fmt: skip
    if "mem" not in skip:
        print_memory(bench_memory(1 / 6 if args.quick else args.mem_hours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
