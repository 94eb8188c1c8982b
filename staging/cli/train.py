"""``dreamnet train``: fit the staging model on simulated nights and scored EDF+ files."""

from __future__ import annotations

import argparse

#: Largest accepted counts: simulated nights (each), hidden units, training passes.
MAX_NIGHTS, MAX_HIDDEN, MAX_EPOCHS = 500, 1024, 1000


def add_parser(subparsers) -> None:
    """Register ``dreamnet train``."""
    from ._common import bounded_int, nonnegative_int, parse_duration

    p = subparsers.add_parser(
        "train",
        help="train the sleep-staging model",
        description="Train the staging model on simulated nights (all sleeper profiles, varied "
        "subjects, channels, amplitudes and rates) and on scored EDF+ recordings given with "
        "--edf. Writes NAME.npz + NAME.json (no pickle). The default set takes a few minutes "
        "on one core.",
    )
    p.add_argument(
        "--nights",
        type=bounded_int(0, MAX_NIGHTS),
        default=24,
        help=f"simulated training nights, 0-{MAX_NIGHTS} (default 24; 0 = only --edf recordings)",
    )
    p.add_argument(
        "--val-nights",
        type=bounded_int(0, MAX_NIGHTS),
        default=6,
        help=f"simulated validation nights, separate seeds, 0-{MAX_NIGHTS} (default 6)",
    )
    p.add_argument(
        "--duration",
        type=parse_duration,
        default=8 * 3600.0,
        help="length of each simulated night, e.g. 8h (default)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the fit (default 0)")
    p.add_argument(
        "--edf",
        action="append",
        default=[],
        metavar="FILE",
        help="scored EDF/BDF to add (repeatable); FILE=HYPNOGRAM.edf names the hypnogram "
        "file, else a Sleep-EDF *Hypnogram.edf next to it or the file's own 'Sleep stage' "
        "annotations are used",
    )
    p.add_argument("--eeg", help="EEG channel of the --edf recordings (default: by name)")
    p.add_argument("--eog", help="EOG channel(s) of the --edf recordings (default: by name)")
    p.add_argument("--emg", help="EMG channel of the --edf recordings (default: by name)")
    p.add_argument(
        "--hidden",
        type=bounded_int(1, MAX_HIDDEN),
        default=48,
        help=f"hidden units, 1-{MAX_HIDDEN} (48)",
    )
    p.add_argument(
        "--epochs",
        type=bounded_int(1, MAX_EPOCHS),
        default=20,
        help=f"training passes, 1-{MAX_EPOCHS} (20)",
    )
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="keep the features of simulated nights in DIR and reuse them while the sleeper's "
        "and the features' code is unchanged (faster re-training)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="directory for both models, simulated-only.{npz,json} and "
        "dreamnet_stager.{npz,json}; existing model files are refused unless --force (default: "
        "the shipped models in staging/stager/models/)",
    )
    p.add_argument("--force", action="store_true", help="replace the --out files if they exist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the training."""
    from pathlib import Path

    from staging.stager.model import DEFAULT_MODEL, MODEL_DIR, SIMULATED_ONLY_MODEL
    from staging.stager.train import run as train_run

    from ..outputs import check_outputs

    out = Path(args.out) if args.out else MODEL_DIR
    names = ([SIMULATED_ONLY_MODEL] if args.nights else []) + [DEFAULT_MODEL]
    inputs = [("--edf", part) for spec in args.edf for part in spec.split("=")]
    outputs = [("--out", out / f"{n}{ext}") for n in names for ext in (".npz", ".json")]
    check_outputs(outputs, inputs, force=args.force)
    return train_run(args)
