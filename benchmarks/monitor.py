"""Benchmark of ``dreamnet monitor`` (issue 7, DESIGN 5).

1. **Whole night, headless**: ``dreamnet monitor --source synthetic --speed max --no-tui`` over an
   8-h night of the full montage (10 channels at 256 Hz: driver, filter bank, online stager,
   arousal and nightmare detectors, intervention policy). Target: under 30 s. The run is the
   command's own code path (``build_session`` + the headless loop) in a fresh process, so the
   figure includes imports and start-up; the process's memory (and that of its headset process)
   is sampled when the session clock passes 1 h and at the end: target flat.
2. **Live view at ``--speed 1``**: the command in a pseudo-terminal (140 x 45) for ~20 s after a
   warm-up, with the trace panel on (six filtered channels drawn in braille, a 30-s page: the
   default screen; the run checks that the panel was drawn); CPU of the monitor and its headset
   process as a share of one core. Target < 10 %.
3. **Many headsets on one core**: N simulated 8-channel headsets, each with its own driver
   (decoding a recorded byte stream), filter bank, online stager and arousal detector, served
   round robin one second at a time; CPU per headset-second gives how many real-time headsets
   one core keeps; tracemalloc gives the memory per headset at two points of the run (flat?).
   Targets: >= 1,000 headsets, <= 2 MiB each.

Run from the repository root::

    .venv/bin/python benchmarks/monitor.py            # full (about 2-3 minutes)
    .venv/bin/python benchmarks/monitor.py --quick    # 1-h night, 10 s of live view, 10 headsets

Figures are printed as markdown tables. CPU times are what the processes used (``getrusage``,
``/proc``), wall times what the clock saw: on a shared machine the two differ.
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

from benchmarks._proc import status_kib, tty_cpu  # noqa: E402
from headset.lifeline import child_popen_kwargs  # noqa: E402

TARGET_NIGHT_S = 30.0
TARGET_VIEW_CPU = 0.10
TARGET_HEADSETS = 1000
TARGET_MIB_PER_HEADSET = 2.0
MONTAGE_8 = (
    "EEG F4-M1",
    "EEG C4-M1",
    "EEG O2-M1",
    "EOG E1-M2",
    "EOG E2-M2",
    "EMG chin",
    "ECG",
    "ACC X",
)


# --------------------------------------------------------------------------------------------
# 1. whole night (child process mode)
# --------------------------------------------------------------------------------------------


def night_child(hours: float, mark_h: float) -> None:
    """Run the headless session like the CLI does; print one JSON line of measurements."""
    t_start = time.perf_counter()
    from staging.monitor.app import MonitorOptions, build_session

    opts = MonitorOptions(source="synthetic", speed=None, duration_s=hours * 3600.0, tui=False)
    session = build_session(opts)
    t_built = time.perf_counter()
    child = getattr(getattr(session.source, "_proc", None), "pid", None)
    marks = {}

    def mark(name):
        marks[name] = {
            "t_session_h": session.t / 3600.0,
            "wall_s": time.perf_counter() - t_start,
            "rss_mib": (status_kib("self", "VmRSS") or 0) / 1024,
            "peak_mib": (status_kib("self", "VmHWM") or 0) / 1024,
            "child_rss_mib": (status_kib(child, "VmRSS") or 0) / 1024 if child else 0.0,
            "child_peak_mib": (status_kib(child, "VmHWM") or 0) / 1024 if child else 0.0,
        }

    done_mark = False
    while session.step():
        if not done_mark and session.t >= mark_h * 3600.0:
            mark("mark")
            done_mark = True
    mark("end")  # the session is finished: the headset process has been joined
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ruc = resource.getrusage(resource.RUSAGE_CHILDREN)
    st = session.state
    out = {
        "marks": marks,
        "build_s": t_built - t_start,
        "cpu_self_s": ru.ru_utime + ru.ru_stime,
        "cpu_children_s": ruc.ru_utime + ruc.ru_stime,
        "epochs": len(st.hypnogram),
        "events": int(sum(st.counters.values())),
        "reason": st.end_reason,
    }
    print(json.dumps(out))


def bench_night(hours: float) -> dict:
    mark_h = 1.0 if hours > 1.0 else hours / 4
    cmd = [sys.executable, __file__, "--night-child", str(hours), "--mark", str(mark_h)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **child_popen_kwargs())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"night run failed:\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall_total_s"] = wall
    res["hours"] = hours
    res["mark_h"] = mark_h
    return res


def print_night(r: dict) -> None:
    m, e = r["marks"]["mark"], r["marks"]["end"]
    h = r["hours"]
    print(f"## Whole night headless: {h:g} h, full montage (10 ch, 256 Hz), --speed max\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    target = TARGET_NIGHT_S * h / 8.0
    ok = "ok" if r["wall_total_s"] < target else "MISSED"
    print(f"| wall time, whole process | {r['wall_total_s']:.1f} s | < {target:.0f} s ({ok}) |")
    print(f"| of which start-up (imports, source, models) | {r['build_s']:.1f} s | |")
    cpu = r["cpu_self_s"] + r["cpu_children_s"]
    print(
        f"| CPU: monitor process / headset process / total | {r['cpu_self_s']:.1f} s / "
        f"{r['cpu_children_s']:.1f} s / {cpu:.1f} s | |"
    )
    print(f"| session seconds per wall second | {h * 3600 / r['wall_total_s']:.0f}x | |")
    for name, mm in ((f"at {r['mark_h']:g} h", m), (f"at {h:g} h (end)", e)):
        print(
            f"| memory {name}: monitor RSS / peak | {mm['rss_mib']:.0f} / "
            f"{mm['peak_mib']:.0f} MiB | flat |"
        )
    print(
        f"| headset process RSS / peak at {r['mark_h']:g} h | {m['child_rss_mib']:.0f} / "
        f"{m['child_peak_mib']:.0f} MiB | flat |"
    )
    grow = e["peak_mib"] - m["peak_mib"]
    print(f"| monitor peak growth {r['mark_h']:g} h -> {h:g} h | {grow:+.1f} MiB | ~0 |")
    print(f"| epochs scored / events | {r['epochs']} / {r['events']} | |\n")


# --------------------------------------------------------------------------------------------
# 2. live view CPU
# --------------------------------------------------------------------------------------------


def bench_view(seconds: float, speed: str) -> dict | None:
    args = ["-m", "staging.cli", "monitor", "--speed", speed]
    r = tty_cpu(args, ROOT, (45, 140), warmup_s=8.0, seconds=seconds)
    if r is None:
        return None
    text = r.pop("text")
    r["traces"] = "traces: last" in text and sum("\u2801" <= ch <= "\u28ff" for ch in text) > 200
    return {"speed": speed, **r}


def print_view(rows: list[dict]) -> None:
    print("## Live view CPU (monitor + headset process, share of one core)\n")
    print("| speed | trace panel | CPU | measured over | target |")
    print("|---|---|---|---|---|")
    for r in rows:
        target = f"< {TARGET_VIEW_CPU:.0%}" if r["speed"] == "1" else "(context)"
        ok = ""
        if r["speed"] == "1":
            ok = " ok" if r["cpu_share"] < TARGET_VIEW_CPU else " MISSED"
        panel = "drawn" if r["traces"] else "NOT SEEN"
        print(
            f"| {r['speed']}x | {panel} | {r['cpu_share']:.1%} | {r['wall']:.0f} s | {target}{ok} |"
        )
    print()


# --------------------------------------------------------------------------------------------
# 3. many headsets
# --------------------------------------------------------------------------------------------


def _record_stream(seconds: float, seed: int) -> bytes:
    from headset.device import Device
    from headset.sleeper import Sleeper
    from headset.transport import record

    sl = Sleeper("healthy", seed, duration_s=seconds, montage=MONTAGE_8)
    return record(Device(sl, seed=seed))


class _Headset:
    """One monitored headset: driver on a recorded stream, filter bank, stager, arousals."""

    def __init__(self, stream: bytes, turn_s: float = 1.0):
        from dsp.filterbank import FilterBank
        from headset.driver import Headset
        from headset.transport import BytesTransport
        from staging.closedloop.arousal import ArousalDetector
        from staging.stager.online import OnlineStager

        self.hs = Headset(BytesTransport(stream, read_size=65536))  # a TCP read
        self.hs.connect()
        names, types, fs = self.hs.ch_names, self.hs.ch_types, self.hs.sfreq
        self.bank = FilterBank(types, fs)
        self.stager = OnlineStager(ch_names=names, ch_types=types, sfreq=fs)
        self.arousal = ArousalDetector(fs, names, types)
        self.n = int(round(fs * turn_s))
        self.epochs = 0

    def step(self, cost: dict | None = None) -> bool:
        clock = time.process_time
        t0 = clock()
        c = self.hs.read(self.n)
        if c is None or c.n_samples == 0:
            return False
        t1 = clock()
        self.bank(c.data)
        t2 = clock()
        for est in self.stager.push(c):
            self.arousal.set_stage(est.epoch, est.stage)
            self.epochs += 1
        t3 = clock()
        self.arousal.push(c)
        t4 = clock()
        if cost is not None:
            cost["driver"] += t1 - t0
            cost["filter bank"] += t2 - t1
            cost["online stager"] += t3 - t2
            cost["arousal detector"] += t4 - t3
        return True


def _run_headsets(streams, n_headsets, seconds, turn_s, trace_memory):
    """Run ``n_headsets`` round robin to the end of their streams.

    Returns (steps, cpu_s, wall_s, cost per part in s, memory per headset in bytes at the
    half-way point and at the end or None, epochs staged).
    """
    import tracemalloc

    if trace_memory:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    heads = [_Headset(streams[i % len(streams)], turn_s) for i in range(n_headsets)]
    # warm-up (numba, first epoch) outside the timing
    for h in heads:
        h.step()
    mem = {}
    cost = dict.fromkeys(("driver", "filter bank", "online stager", "arousal detector"), 0.0)
    cpu0 = time.process_time()
    w0 = time.perf_counter()
    steps = 0
    t = 1
    half = int(seconds // 2 / turn_s)
    while True:
        alive = 0
        for h in heads:
            if h.step(cost):
                alive += 1
                steps += 1
        t += 1
        if trace_memory and t == half:
            mem["half"] = (tracemalloc.get_traced_memory()[0] - base) / n_headsets
        if not alive:
            break
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - w0
    if trace_memory:
        mem["end"] = (tracemalloc.get_traced_memory()[0] - base) / n_headsets
        tracemalloc.stop()
    return steps, cpu, wall, cost, (mem or None), sum(h.epochs for h in heads)


def bench_headsets(n_headsets: int, seconds: float, turn_s: float = 1.0) -> dict:
    streams = [_record_stream(seconds, seed) for seed in range(min(n_headsets, 4))]
    warm = _Headset(streams[0], turn_s)  # one-off allocations (compiled kernels, caches)
    for _ in range(int(90 / turn_s)):
        warm.step()
    del warm
    # Time and memory in separate runs: tracing every allocation would slow the timed one.
    steps, cpu, wall, cost, _, epochs = _run_headsets(streams, n_headsets, seconds, turn_s, False)
    *_, mem, _ = _run_headsets(streams, n_headsets, seconds, turn_s, True)
    data_s = steps * turn_s
    per_second = cpu / data_s  # CPU seconds per headset-second of data
    return {
        "n": n_headsets,
        "seconds": seconds,
        "steps": steps,
        "cpu": cpu,
        "wall": wall,
        "per_headset_second_ms": per_second * 1e3,
        "headsets_per_core": 1.0 / per_second,
        "mib_half": mem.get("half", float("nan")) / 2**20,
        "mib_end": mem["end"] / 2**20,
        "epochs": epochs,
        "cost_ms": {k: v / data_s * 1e3 for k, v in cost.items()},
        "turn_s": turn_s,
    }


def print_headsets(r: dict) -> None:
    print(
        f"## Many headsets on one core: {r['n']} x 8-channel 256-Hz headsets, "
        f"{r['seconds']:g} s each\n"
    )
    print("(driver decoding a recorded stream + filter bank + online stager + arousal detector,")
    print(
        f"{r['turn_s']:g} s of signal per headset per turn; memory from tracemalloc in a "
        "second, untimed run)\n"
    )
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| CPU per headset-second of signal | {r['per_headset_second_ms']:.2f} ms | |")
    ok = "ok" if r["headsets_per_core"] >= TARGET_HEADSETS else "MISSED"
    print(
        f"| real-time headsets per core | {r['headsets_per_core']:.0f} | "
        f">= {TARGET_HEADSETS} ({ok}) |"
    )
    ok = "ok" if r["mib_end"] <= TARGET_MIB_PER_HEADSET else "MISSED"
    print(
        f"| memory per headset, half-way / end | {r['mib_half']:.2f} / {r['mib_end']:.2f} MiB | "
        f"<= {TARGET_MIB_PER_HEADSET:g} MiB, flat ({ok}) |"
    )
    parts = ", ".join(f"{k} {v:.2f}" for k, v in r["cost_ms"].items())
    print(f"| of which (ms per headset-second) | {parts} | |")
    print(f"| epochs staged | {r['epochs']} | |")
    print(f"| CPU / wall | {r['cpu']:.1f} s / {r['wall']:.1f} s | |\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1-h night, 10 s of view, 10 headsets")
    p.add_argument("--night-child", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--mark", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--skip", default="", help="comma-separated parts to skip: night,view,scale")
    args = p.parse_args(argv)
    if args.night_child is not None:
        night_child(args.night_child, args.mark)
        return 0
    skip = set(filter(None, args.skip.split(",")))
    print(f"# dreamnet monitor benchmark ({'quick' if args.quick else 'full'})\n")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n")
    if "night" not in skip:
        print_night(bench_night(1.0 if args.quick else 8.0))
    if "view" not in skip:
        secs = 10.0 if args.quick else 20.0
        rows = [r for r in (bench_view(secs, "1"), bench_view(secs, "60")) if r]
        if rows:
            print_view(rows)
    if "scale" not in skip:
        n, secs = (10, 180.0) if args.quick else (20, 300.0)
        for turn in (1.0, 5.0):
            print_headsets(bench_headsets(n, secs, turn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
