"""Realism of the simulated sleeper against YASA and the DESIGN ranges (issue 2, DESIGN 4).

1. Stages simulated nights with YASA's pretrained model (trained on thousands of real human
   nights) and compares with the simulator's ground truth: confusion matrix, per-stage recall,
   overall agreement, per seed. Targets (healthy, 5 seeds): agreement >= 80 %, recall >= 0.6 for
   W, N2, N3, R and >= 0.3 for N1 on every seed.
2. Architecture statistics of many simulated nights against the DESIGN ranges.
3. Simulation speed: one 8-h night of the full montage at 256 Hz, read in 1-s chunks, one core
   (target < 20 s).

Run from the repository root::

    .venv/bin/python benchmarks/realism.py                # full run (several minutes)
    .venv/bin/python benchmarks/realism.py --quick        # 2 seeds x 4 h, 5 nights
    .venv/bin/python benchmarks/realism.py --profile child --seeds 3 --no-speed

YASA (``pip install yasa``) is an optional benchmark dependency; without it, part 1 is skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from headset.sleeper import HEALTHY_TARGETS, PROFILES, Sleeper, architecture_stats  # noqa: E402
from headset.stages import STAGE_NAMES  # noqa: E402
from staging.stager.evaluate import kappa_from_confusion  # noqa: E402

YASA_CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG chin")
RECALL_TARGET = {"W": 0.6, "N1": 0.3, "N2": 0.6, "N3": 0.6, "R": 0.6}


def simulate(profile: str, seed: int, duration_s: float, sfreq: float, chunk_s: float = 60.0):
    """Simulate a night and return (data µV (3, n), true hypnogram, seconds taken)."""
    s = Sleeper(
        profile=profile, seed=seed, duration_s=duration_s, sfreq=sfreq, montage=YASA_CHANNELS
    )
    data = np.empty((len(YASA_CHANNELS), s.n_samples), dtype=np.float64)
    step = int(chunk_s * sfreq)
    t0 = time.perf_counter()
    while not s.done:
        c = s.read(step)
        data[:, c.first_sample : c.stop_sample] = c.data
    return data, s.hypnogram, time.perf_counter() - t0


def yasa_stage(data: np.ndarray, sfreq: float, eeg_only: bool) -> np.ndarray:
    """Stage with YASA; return int stage codes per 30-s epoch."""
    import mne
    import yasa

    info = mne.create_info(list(YASA_CHANNELS), sfreq, ["eeg", "eog", "emg"])
    raw = mne.io.RawArray(data * 1e-6, info, verbose="error")
    kw = {} if eeg_only else {"eog_name": "EOG E1-M2", "emg_name": "EMG chin"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = yasa.SleepStaging(raw, eeg_name="EEG C4-M1", **kw).predict()
    values = pred.hypno.to_numpy() if hasattr(pred, "hypno") else np.asarray(pred)
    lut = {name: i for i, name in enumerate(STAGE_NAMES)} | {"WAKE": 0, "REM": 4}
    return np.array([lut[str(p).upper()] for p in values], dtype=np.int64)


def confusion(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """5x5 confusion matrix, rows true, columns predicted."""
    m = np.zeros((5, 5), dtype=np.int64)
    np.add.at(m, (true, pred), 1)
    return m


def print_confusion(m: np.ndarray, title: str) -> None:
    print(f"\n{title} (rows: truth, columns: YASA)")
    print("       " + "".join(f"{n:>7}" for n in STAGE_NAMES) + "  recall")
    for i, name in enumerate(STAGE_NAMES):
        tot = m[i].sum()
        rec = f"{m[i, i] / tot:7.2f}" if tot else "      -"
        print(f"  {name:>4} " + "".join(f"{v:7d}" for v in m[i]) + rec)
    print(f"  agreement {np.trace(m) / max(m.sum(), 1):.3f}, kappa {kappa_from_confusion(m):.3f}")


def run_yasa(args) -> bool:
    try:
        import yasa  # noqa: F401
    except ImportError:
        print("yasa is not installed: skipping the YASA agreement part (pip install yasa)")
        return True
    ok_all = True
    for profile in args.profile:
        total = np.zeros((5, 5), dtype=np.int64)
        print(
            f"\n=== YASA agreement, profile {profile}, {len(args.seed_list)} seeds, "
            f"{args.duration / 3600:g} h, {'EEG only' if args.eeg_only else 'EEG+EOG+EMG'}"
        )
        for seed in args.seed_list:
            data, hyp, took = simulate(profile, seed, args.duration, args.sfreq)
            t0 = time.perf_counter()
            pred = yasa_stage(data, args.sfreq, args.eeg_only)
            n = min(pred.size, hyp.size)
            m = confusion(hyp[:n].astype(np.int64), pred[:n])
            total += m
            agree = np.trace(m) / m.sum()
            recalls = {
                name: (m[i, i] / m[i].sum() if m[i].sum() else float("nan"))
                for i, name in enumerate(STAGE_NAMES)
            }
            ok = agree >= 0.8 and all(not (r < RECALL_TARGET[k]) for k, r in recalls.items())
            ok_all &= bool(ok) or profile != "healthy"
            rec = " ".join(f"{k}={v:.2f}" for k, v in recalls.items())
            print(
                f"  seed {seed:3d}: agreement {agree:.3f}  recall {rec}  "
                f"[sim {took:.1f} s, yasa {time.perf_counter() - t0:.1f} s]"
                f"{'' if ok or profile != 'healthy' else '  <- below target'}"
            )
            if args.verbose:
                print_confusion(m, f"seed {seed}")
        print_confusion(total, f"all seeds, profile {profile}")
    return ok_all


def run_architecture(args) -> bool:
    ok_all = True
    if args.nights <= 0:
        return ok_all
    for profile in args.profile:
        stats = []
        for seed in range(args.first_seed, args.first_seed + args.nights):
            s = Sleeper(profile=profile, seed=seed, duration_s=8 * 3600.0, sfreq=args.sfreq)
            stats.append(architecture_stats(s.hypnogram))
        print(f"\n=== Architecture, profile {profile}, {args.nights} nights of 8 h")
        print(f"  {'statistic':<16}{'min':>8}{'mean':>8}{'max':>8}   DESIGN (healthy)  in range")
        for key in stats[0]:
            v = np.array([st.get(key, np.nan) for st in stats], dtype=float)
            lo, hi = HEALTHY_TARGETS.get(key, (np.nan, np.nan))
            if key in HEALTHY_TARGETS:
                inside = int(np.sum((v >= lo) & (v <= hi)))
                flag = f"{lo:6.0f}-{hi:<6.0f}    {inside}/{v.size}"
                if profile == "healthy":
                    ok_all &= inside == v.size
            else:
                flag = ""
            print(f"  {key:<16}{np.nanmin(v):8.1f}{np.nanmean(v):8.1f}{np.nanmax(v):8.1f}   {flag}")
    return ok_all


def run_speed(args) -> bool:
    """Time one 8-h night; the target is judged on CPU time (one core, whatever the load)."""
    s = Sleeper(profile="healthy", seed=args.first_seed, duration_s=8 * 3600.0, sfreq=256.0)
    step = 256
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    while not s.done:
        n += s.read(step).n_samples
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n=== Speed: 8-h night, full montage ({len(s.ch_names)} channels, 256 Hz), read in 1-s "
        f"chunks: {cpu:.1f} s CPU on one core, {wall:.1f} s wall (load average {load:.1f}); "
        f"{8 * 3600 / cpu:.0f}x real time; target < 20 s: {'ok' if cpu < 20 else 'MISSED'}"
    )
    return cpu < 20


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profile", nargs="+", default=["healthy"], choices=list(PROFILES))
    p.add_argument("--seeds", type=int, default=5, help="nights staged by YASA per profile")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--nights", type=int, default=20, help="nights for the architecture part")
    p.add_argument("--duration", type=float, default=8 * 3600.0, help="YASA nights, seconds")
    p.add_argument("--sfreq", type=float, default=256.0)
    p.add_argument("--eeg-only", action="store_true", help="give YASA the EEG only")
    p.add_argument("--quick", action="store_true", help="2 seeds x 4 h, 5 nights")
    p.add_argument("--no-yasa", action="store_true")
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--verbose", "-v", action="store_true", help="confusion matrix per seed")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.duration, args.nights = 2, 4 * 3600.0, 5
    args.seed_list = list(range(args.first_seed, args.first_seed + args.seeds))
    ok = True
    ok &= run_architecture(args)
    if not args.no_speed:
        ok &= run_speed(args)
    if not args.no_yasa:
        ok &= run_yasa(args)
    print(f"\nall targets met: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
