"""``dreamnet simulate``: a simulated night written to EDF+ with its ground truth (DESIGN 3).

The night is simulated and recorded by :func:`headset.simulate.simulate_to_edf`; this module
parses the options, shows the progress and prints the summary.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from headset.simulate import REDUCED_MONTAGE

from ..errors import StagingError
from ..outputs import check_outputs, partial_output, printable
from ._common import add_duration, add_seed


def _profiles() -> dict[str, str]:
    """Profile name -> what it changes."""
    from headset.sleeper.profiles import PROFILES

    return {name: p.description for name, p in PROFILES.items()}


def _faults_help() -> str:
    from headset.faults import faults_help

    return faults_help()


def add_parser(subparsers) -> None:
    """Register ``dreamnet simulate``."""
    profiles = _profiles()
    prof_text = "\n".join(f"  {name:<16} {text}" for name, text in profiles.items())
    epilog = (
        f"profiles:\n{prof_text}\n\n"
        "faults (--faults name=value,...): signal faults act in the sleeper; with packet\n"
        "faults the night goes through the simulated device link (firmware, packets,\n"
        "driver) and lost data are written as gaps ('Gap' annotations):\n"
        f"{_faults_help()}\n\n"
        "montages: full (EEG F4/C4/O2-M1, EOG E1/E2-M2, EMG chin, ECG, ACC X/Y/Z), reduced\n"
        f"({', '.join(REDUCED_MONTAGE)}), or a comma-separated list of channel names, among\n"
        "them the EEG derivations the sleeper renders beyond the headset's: EEG Fpz-Cz,\n"
        "EEG Pz-Oz, EEG F3-M2, EEG C3-M2, EEG O1-M2, EEG Fz-Cz, EEG Cz-M1.\n\n"
        "example: dreamnet simulate --duration 8h --seed 7 --profile nightmare-prone "
        "--out night.edf"
    )
    p = subparsers.add_parser(
        "simulate",
        help="simulate a night and write it to EDF+ with ground-truth annotations",
        description=(
            "Simulate a night of the headset's sleeper and write it to an EDF+ file: every\n"
            "signal in physical units (µV; accelerometer in milli-g; 16-bit quantisation, see\n"
            "headset.recorder), every ground-truth event (sleep stages, arousals, nightmares,\n"
            "awakenings, artifacts and faults) as an annotation. Same arguments, same file.\n"
            "A progress bar shows on a terminal; a summary of the night is printed at the end."
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_duration(p, 8 * 3600.0, "length of the night, e.g. 8h, 90m, 1h30m, 45s (default 8h)")
    add_seed(p, "the simulated night")
    p.add_argument(
        "--profile",
        choices=tuple(profiles),
        default="healthy",
        metavar="PROFILE",
        help=f"kind of sleeper: {', '.join(profiles)} (default healthy; see below)",
    )
    p.add_argument("--faults", default=None, metavar="SPEC", help="e.g. mains=20,pops=2,leadoff=1")
    p.add_argument(
        "--montage",
        default="full",
        help="full (default), reduced, or a comma-separated list of channel names",
    )
    p.add_argument(
        "--sfreq", type=float, default=256.0, help="sampling rate in Hz, 100-2048 (default 256)"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE.edf",
        help="output EDF+ file; written as FILE.edf.partial and renamed when complete (a failed "
        "or interrupted run removes it)",
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run)


def parse_montage(text: str) -> tuple[str, ...] | None:
    """Turn ``--montage`` into channel names (None = the sleeper's default montage).

    Parameters
    ----------
    text : str
        ``full``, ``reduced`` or comma-separated channel names.

    Returns
    -------
    tuple of str or None
        The channels, or None for the full default montage.
    """
    key = text.strip().lower()
    if key == "full":
        return None
    if key == "reduced":
        return REDUCED_MONTAGE
    from headset.sleeper.montage import resolve_montage

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise StagingError("--montage needs full, reduced or channel names")
    try:
        return resolve_montage(names)
    except ValueError as exc:
        raise StagingError(f"--montage: {exc}") from None


def summary_lines(result: dict, out, profile: str, seed: int) -> list[str]:
    """Short text summary of a simulated night (stage minutes and events).

    Parameters
    ----------
    result : dict
        What :func:`headset.simulate.simulate_to_edf` returned.
    out : str or path-like
        The written file.
    profile : str
        Sleeper profile.
    seed : int
        Seed.

    Returns
    -------
    list of str
        Lines to print.
    """
    import os

    import numpy as np

    from headset.stages import EPOCH_S, STAGE_NAMES

    dur = result["duration_s"]
    size_mb = os.path.getsize(out) / 1e6
    h, m = divmod(int(round(dur / 60)), 60)
    lines = [
        f"{out}: {h} h {m:02d} min, {len(result['ch_names'])} channels at "
        f"{result['sfreq']:g} Hz, {size_mb:.1f} MB, profile {profile}, seed {seed}"
    ]
    hyp = np.asarray(result["hypnogram"])
    n_ep = int(np.ceil(dur / EPOCH_S - 1e-9))
    hyp = hyp[:n_ep]
    minutes = [(hyp == k).sum() * EPOCH_S / 60 for k in range(len(STAGE_NAMES))]
    sleep = sum(minutes[1:])
    stage_txt = "  ".join(f"{n} {v:.1f}" for n, v in zip(STAGE_NAMES, minutes))
    eff = f"  (sleep {sleep:.0f} min, efficiency {100 * sleep / max(dur / 60, 1e-9):.0f}%)"
    lines.append(f"stages (min): {stage_txt}{eff}")
    ev = result["events"]
    if ev:
        grouped = Counter()
        for text, n in ev.items():
            grouped[text.split(":")[0].split(" -> ")[0]] += n
        lines.append("events: " + ", ".join(f"{k} {v}" for k, v in sorted(grouped.items())))
    else:
        lines.append("events: none")
    stats = result["stats"]
    clipped = sum(stats["clipped"].values())
    if clipped:
        lines.append(f"clipped to the EDF range: {clipped} samples (saturation)")
    return lines


def run(args) -> int:
    """Run ``dreamnet simulate``; returns the exit code."""
    from headset.faults import parse_faults

    faults = parse_faults(args.faults)
    montage = parse_montage(args.montage)
    if not (args.sfreq > 0 and args.sfreq < float("inf")):
        raise StagingError(f"--sfreq must be a positive number of Hz, got {args.sfreq}")
    _check_writable(args.out)
    check_outputs([("--out", args.out)], force=args.force)
    show = not args.quiet and sys.stderr.isatty()
    if show:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("simulating {task.description}"),
            BarColumn(),
            TextColumn("{task.fields[night]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # the bar on stderr, the summary on stdout
            transient=True,
        )
        with bar:
            task = bar.add_task(args.profile, total=args.duration, night="0:00")

            def progress(t: float) -> None:
                bar.update(task, completed=t, night=f"{int(t // 3600)}:{int(t % 3600 // 60):02d}")

            result = _simulate(args, faults, montage, progress)
    else:
        result = _simulate(args, faults, montage, None)
    if not args.quiet:
        for line in summary_lines(result, args.out, args.profile, args.seed):
            print(printable(line))
    return 0


def _check_writable(out) -> None:
    """Raise HeadsetError unless ``out`` can be created (before simulating anything)."""
    import os
    from pathlib import Path

    from headset.errors import HeadsetError

    path = Path(out)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise HeadsetError(f"--out {out}: is a directory, cannot write the recording")
    if not parent.is_dir():
        raise HeadsetError(f"--out {out}: cannot write the recording (no directory {parent})")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise HeadsetError(f"--out {out}: cannot write the recording (permission denied)")


def _simulate(args, faults, montage, progress) -> dict:
    from headset.simulate import simulate_to_edf

    with partial_output(args.out) as tmp:
        return simulate_to_edf(
            tmp,
            duration_s=args.duration,
            seed=args.seed,
            profile=args.profile,
            faults=faults,
            montage=montage,
            sfreq=args.sfreq,
            progress=progress,
        )
