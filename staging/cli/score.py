"""``dreamnet score``: stage recordings into hypnogram CSV files."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..errors import StagingError
from ..night.archive import is_pattern, scheduler_address
from ..outputs import check_outputs, partial_output, printable
from ._common import add_allow_truncated, bounded_int

DESCRIPTION = (
    "Stage EDF/BDF recordings (the project's own or real PSG) into 30-s epochs. "
    "Channels are chosen by name (C4, C3, Cz, F4, ... with or without a -M1/-A1 reference; "
    "EOG and chin EMG likewise) unless given. Output CSV columns: "
    "epoch,onset_s,stage,confidence,p_W,p_N1,p_N2,p_N3,p_R. "
    "Files given one by one are scored in this process, one after the other, and the first "
    "bad one stops the run. An ARCHIVE (a PATH that is a directory, searched recursively "
    "for .edf/.bdf, or a quoted glob such as 'data/**/*.edf', or any of --jobs, --scheduler, "
    "--report) is scored on dask.distributed, one task per night: into DIR go NAME.csv "
    "(byte-identical to scoring the night alone), NAME.json (its record: input sha256, "
    "model and version, options, AASM statistics) and, with --report, NAME.report/; the "
    "layout mirrors the inputs' folders. DIR/cohort.csv gets one row per night, with "
    "status ok or error and the message (it is rewritten by every run). A bad night is an "
    "error row and the others go on; exit code 1 when some nights failed. Re-running the "
    "same command skips nights whose outputs exist for the same input sha256, model "
    "version and options; outputs that exist but differ are refused (exit 2) unless "
    "--force."
)


def add_parser(subparsers) -> None:
    """Register ``dreamnet score``."""
    p = subparsers.add_parser(
        "score", help="stage recordings into hypnogram CSV files", description=DESCRIPTION
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="PATH",
        help="recordings: files, directories (archive) or quoted glob patterns (archive)",
    )
    _staging_options(p.add_argument_group("staging"))
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR|FILE.csv",
        help="output CSV (one input file) or directory (one NAME.csv per input)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace CSV files that exist (archive: score again every night, done or not)",
    )
    _archive_options(p.add_argument_group("archive (dask.distributed)"))
    p.set_defaults(func=run)


def _staging_options(g) -> None:
    """Add the options of how a recording is staged: channels, mode, model."""
    g.add_argument("--eeg", help="EEG channel name (default: chosen by name)")
    g.add_argument("--eog", help="EOG channel(s), e.g. 'E1-M2,E2-M2', or 'none'")
    g.add_argument("--emg", help="chin EMG channel name, or 'none'")
    g.add_argument(
        "--mode",
        choices=("offline", "online"),
        default="offline",
        help="offline: whole-recording context (default); online: what the live stager "
        "says at the end of each epoch",
    )
    g.add_argument(
        "--model",
        help="'simulated-only' (trained on simulated nights alone) or a model file "
        "(default: the shipped model, simulated nights plus one real scored night)",
    )
    add_allow_truncated(g, "score")


def _archive_options(g) -> None:
    """Add the options that score an archive on dask.distributed."""
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=bounded_int(1, 64),
        metavar="N",
        help="archive: a local dask cluster of N single-threaded worker processes "
        "(default: the number of cores)",
    )
    where.add_argument(
        "--scheduler",
        type=scheduler_address,
        metavar="tcp://HOST:PORT",
        help="archive: an existing dask.distributed scheduler; its workers must read the "
        "inputs and write --out at the same paths (a shared file system)",
    )
    g.add_argument(
        "--report",
        action="store_true",
        help="archive: also write each night's morning report into NAME.report/ (as "
        "`dreamnet report`, which stages with the default model whatever --model says)",
    )


def _targets(files: list[str], out: str) -> list[Path]:
    o = Path(out)
    if o.suffix.lower() == ".csv" and not o.is_dir():
        if len(files) != 1:
            raise StagingError(
                f"--out {out} is one CSV file but {len(files)} recordings were given"
            )
        if not o.parent.exists():
            raise StagingError(f"--out: directory {o.parent} does not exist")
        return [o]
    if o.exists() and not o.is_dir():
        raise StagingError(f"--out {out}: exists and is not a directory")
    names = [Path(f).stem for f in files]
    if len(set(names)) != len(names):
        raise StagingError(
            "two input files have the same name; score them into separate --out dirs"
        )
    return [o / f"{n}.csv" for n in names]


def run(args: argparse.Namespace) -> int:
    """Score every file; stop at the first bad one (exit code 2, one line naming it).

    An archive (see :func:`is_archive`) goes to :func:`run_archive_command` instead.
    """
    if is_archive(args):
        return run_archive_command(args)
    from headset.errors import HeadsetError
    from staging.errors import StagingError
    from staging.stager.model import resolve_model
    from staging.stager.score import StagingWarning, score

    targets = _targets(args.files, args.out)
    check_outputs(
        [("--out", t) for t in targets],
        [("FILE", f) for f in args.files],
        force=args.force,
    )
    for directory in {t.parent for t in targets}:
        directory.mkdir(parents=True, exist_ok=True)
    model = resolve_model(args.model)
    progress = _progress(len(args.files))
    # lines go above a progress bar on a terminal; plain and never wrapped into a file or pipe
    emit = print
    if progress is not None and sys.stdout.isatty():

        def emit(text: str) -> None:
            progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

    try:
        if progress is not None:
            task = progress.add_task("scoring", total=len(args.files))
        for f, target in zip(args.files, targets):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", StagingWarning)
                try:
                    hyp = score(
                        f,
                        eeg=args.eeg,
                        eog=args.eog,
                        emg=args.emg,
                        mode=args.mode,
                        model=model,
                        allow_truncated=args.allow_truncated,
                    )
                except (HeadsetError, StagingError) as exc:
                    raise _naming(exc, f) from None
            for w in caught:
                if issubclass(w.category, StagingWarning):
                    print(printable(f"dreamnet: warning: {w.message}"), file=sys.stderr)
            with partial_output(target) as tmp:
                hyp.to_csv(tmp)
            summary = hyp.summary()
            text = " ".join(f"{k} {v:.0f}m" for k, v in summary.items() if v > 0)
            line = f"{f}: {len(hyp)} epochs -> {target}  [{text}]"
            emit(printable(f"{line}  {hyp.channel_line()}"))
            if progress is not None:
                progress.advance(task)
    finally:
        if progress is not None:
            progress.stop()
    return 0


def is_archive(args: argparse.Namespace) -> bool:
    """Return True for an archive: a directory or glob PATH, or --jobs/--scheduler/--report."""
    if args.jobs is not None or args.scheduler is not None or args.report:
        return True
    return any(Path(f).is_dir() or is_pattern(f) for f in args.files)


def run_archive_command(args: argparse.Namespace) -> int:
    """Score an archive on dask.distributed; exit code 0 if every night was scored, else 1."""
    from staging.night.archive import COHORT_FILE, run_archive

    options = {
        "mode": args.mode,
        "eeg": args.eeg,
        "eog": args.eog,
        "emg": args.emg,
        "allow_truncated": args.allow_truncated,
    }
    summary, _ = run_archive(
        args.files,
        args.out,
        jobs=args.jobs,
        scheduler=args.scheduler,
        model=args.model,
        options=options,
        report=args.report,
        force=args.force,
    )
    print(printable(summary.line(Path(args.out) / COHORT_FILE)))
    return 1 if summary.failed else 0


def _progress(n_files: int):
    """Return a progress bar on stderr (several files, stderr a terminal), else None."""
    if n_files < 2 or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import Progress

    # with stdout on the terminal too, the bar shares its console so lines print above it
    console = Console() if sys.stdout.isatty() else Console(stderr=True)
    progress = Progress(console=console, transient=True, redirect_stdout=False)
    progress.start()
    return progress


def _naming(exc: Exception, path: str) -> Exception:
    """Return ``exc`` with its message starting with the recording's name (one line)."""
    msg = str(exc)
    if msg.startswith((str(path), Path(path).name)):
        return exc
    return type(exc)(f"{path}: {msg}")
