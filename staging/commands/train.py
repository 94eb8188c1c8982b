"""``dreamnet train``: fit the staging model on simulated nights and scored EDF+ files."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    """Register ``dreamnet train``."""
    from ._common import nonnegative_int, parse_duration

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
        type=nonnegative_int,
        default=24,
        help="simulated training nights (default 24; 0 = only --edf recordings)",
    )
    p.add_argument(
        "--val-nights",
        type=nonnegative_int,
        default=6,
        help="simulated validation nights, separate seeds (default 6)",
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
    p.add_argument("--hidden", type=nonnegative_int, default=48, help="hidden units (48)")
    p.add_argument("--epochs", type=nonnegative_int, default=20, help="training passes (20)")
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="keep the features of simulated nights in DIR and reuse them while the sleeper's "
        "and the features' code is unchanged (faster re-training)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="model path without suffix (default: the shipped "
        "staging/stager/models/dreamnet_stager)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the training."""
    from staging.stager.train import run as train_run

    return train_run(args)
