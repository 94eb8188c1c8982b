"""``dreamnet score``: stage recordings into hypnogram CSV files."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def add_parser(subparsers) -> None:
    """Register ``dreamnet score``."""
    p = subparsers.add_parser(
        "score",
        help="stage recordings into hypnogram CSV files",
        description="Stage EDF/BDF recordings (the project's own or real PSG) into 30-s epochs. "
        "Channels are chosen by name (C4, C3, Cz, F4, ... with or without a -M1/-A1 reference; "
        "EOG and chin EMG likewise) unless given. Output CSV columns: "
        "epoch,onset_s,stage,confidence,p_W,p_N1,p_N2,p_N3,p_R.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="recordings to score")
    p.add_argument("--eeg", help="EEG channel name (default: chosen by name)")
    p.add_argument("--eog", help="EOG channel(s), e.g. 'E1-M2,E2-M2', or 'none'")
    p.add_argument("--emg", help="chin EMG channel name, or 'none'")
    p.add_argument(
        "--mode",
        choices=("offline", "online"),
        default="offline",
        help="offline: whole-recording context (default); online: what the live stager "
        "says at the end of each epoch",
    )
    p.add_argument("--model", help="model file (default: the shipped model)")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR|FILE.csv",
        help="output CSV (one input file) or directory (one NAME.csv per input)",
    )
    p.set_defaults(func=run)


def _targets(files: list[str], out: str) -> list[Path]:
    o = Path(out)
    if o.suffix.lower() == ".csv" and not o.is_dir():
        if len(files) != 1:
            raise ValueError(f"--out {out} is one CSV file but {len(files)} recordings were given")
        if not o.parent.exists():
            raise ValueError(f"--out: directory {o.parent} does not exist")
        return [o]
    o.mkdir(parents=True, exist_ok=True)
    names = [Path(f).stem for f in files]
    if len(set(names)) != len(names):
        raise ValueError("two input files have the same name; score them into separate --out dirs")
    return [o / f"{n}.csv" for n in names]


def run(args: argparse.Namespace) -> int:
    """Score every file; stop at the first bad one (exit code 2, one line)."""
    from staging.stager.model import resolve_model
    from staging.stager.score import StagingWarning, score

    targets = _targets(args.files, args.out)
    model = resolve_model(args.model)
    show = len(args.files) > 1 and sys.stderr.isatty()
    progress = None
    if len(args.files) > 1:
        from rich.progress import Progress

        progress = Progress(transient=True, disable=not show)
        progress.start()
        task = progress.add_task("scoring", total=len(args.files))
    try:
        for f, target in zip(args.files, targets):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", StagingWarning)
                hyp = score(
                    f, eeg=args.eeg, eog=args.eog, emg=args.emg, mode=args.mode, model=model
                )
            for w in caught:
                if issubclass(w.category, StagingWarning):
                    print(f"dreamnet: warning: {w.message}", file=sys.stderr)
            hyp.to_csv(target)
            summary = hyp.summary()
            text = " ".join(f"{k} {v:.0f}m" for k, v in summary.items() if v > 0)
            line = f"{f}: {len(hyp)} epochs -> {target}  [{text}]\n  {hyp.channel_line()}"
            if progress is not None:
                progress.console.print(line, highlight=False)
                progress.advance(task)
            else:
                print(line)
    finally:
        if progress is not None:
            progress.stop()
    return 0
