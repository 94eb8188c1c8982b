"""``dreamnet train``: fit the staging model on simulated nights and scored EDF+ files."""

from __future__ import annotations

import argparse

from ._common import add_count, add_duration, add_seed

#: Largest accepted counts: simulated nights (each), hidden units, training passes.
MAX_NIGHTS, MAX_HIDDEN, MAX_EPOCHS = 500, 1024, 1000


DESCRIPTION = (
    "Train the staging model on simulated nights (all sleeper profiles, varied subjects, "
    "channels, amplitudes and rates) and on scored EDF+ recordings given with --edf. Writes "
    "NAME.npz + NAME.json (no pickle). The default set takes a few minutes on one core."
)


def add_parser(subparsers) -> None:
    """Register ``dreamnet train``."""
    p = subparsers.add_parser(
        "train", help="train the sleep-staging model", description=DESCRIPTION
    )
    _data_options(p)
    fit = p.add_argument_group("the fit")
    add_seed(fit, "the fit")
    add_count(fit, "--hidden", 1, MAX_HIDDEN, 48, "hidden units")
    add_count(fit, "--epochs", 1, MAX_EPOCHS, 20, "training passes")
    fit.add_argument(
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
    p.add_argument(
        "--recalibrate",
        metavar="MODEL",
        choices=("simulated-only", "dreamnet_stager"),
        help="only refit the calibration temperatures of the model MODEL (simulated-only or "
        "dreamnet_stager) in --out on the --val-nights simulated validation nights (rewrites "
        "its .json; needs --force)",
    )
    p.set_defaults(func=run)


def _data_options(p: argparse.ArgumentParser) -> None:
    """Add the training data options: simulated nights and scored recordings."""
    data = p.add_argument_group("training data")
    add_count(
        data, "--nights", 0, MAX_NIGHTS, 24, "simulated training nights (0: only --edf recordings)"
    )
    add_count(data, "--val-nights", 0, MAX_NIGHTS, 6, "simulated validation nights, other seeds")
    add_duration(data, 8 * 3600.0, "length of each simulated night, e.g. 8h (default)")
    data.add_argument(
        "--edf",
        action="append",
        default=[],
        metavar="FILE",
        help="scored EDF/BDF to add (repeatable); FILE=HYPNOGRAM.edf names the hypnogram "
        "file, else a Sleep-EDF *Hypnogram.edf next to it or the file's own 'Sleep stage' "
        "annotations are used",
    )
    data.add_argument("--eeg", help="EEG channel of the --edf recordings (default: by name)")
    data.add_argument("--eog", help="EOG channel(s) of the --edf recordings (default: by name)")
    data.add_argument("--emg", help="EMG channel of the --edf recordings (default: by name)")


def run(args: argparse.Namespace) -> int:
    """Run the training."""
    from pathlib import Path

    from staging.stager.model import DEFAULT_MODEL, MODEL_DIR, SIMULATED_ONLY_MODEL
    from staging.stager.train import run as train_run
    from staging.stager.train import run_recalibrate

    from ..outputs import check_outputs

    out = Path(args.out) if args.out else MODEL_DIR
    if args.recalibrate:
        check_outputs([("--out", out / f"{args.recalibrate}.json")], [], force=args.force)
        return run_recalibrate(args)
    names = ([SIMULATED_ONLY_MODEL] if args.nights else []) + [DEFAULT_MODEL]
    inputs = [("--edf", part) for spec in args.edf for part in spec.split("=")]
    outputs = [("--out", out / f"{n}{ext}") for n in names for ext in (".npz", ".json")]
    check_outputs(outputs, inputs, force=args.force)
    return train_run(args)
