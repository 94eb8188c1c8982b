"""Measure a stager against an expert hypnogram: agreement, kappa, per-stage recall, calibration.

Used by the real-data tests and ``benchmarks/staging.py`` on the Sleep-EDF night of the shared
data (and by anyone with a scored recording of their own). The conventions are those of
``../shared/tools/real_night.py``: R&K stages 3 and 4 are N3, the *scored window* runs from 30 min
before the first to 30 min after the last sleep epoch, and an epoch the stager left unscored
(``?``) counts as wrong.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headset.stages import EPOCH_S, STAGE_NAMES, UNSCORED, parse_stage_annotation


def kappa_from_confusion(cm: np.ndarray) -> float:
    """Cohen's kappa of a confusion matrix (rows: truth, columns: prediction).

    Parameters
    ----------
    cm : ndarray, shape (n_classes, n_classes)
        Counts.

    Returns
    -------
    float
        Kappa; NaN for an empty matrix, 1.0 when chance agreement is already perfect.
    """
    cm = np.asarray(cm, dtype=np.float64)
    n = cm.sum()
    if n == 0:
        return float("nan")
    po = np.trace(cm) / n
    pe = float(cm.sum(0) @ cm.sum(1)) / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else 1.0


def epoch_agreement(y_true, y_pred) -> tuple[float, float, int]:
    """Agreement and Cohen's kappa of two hypnograms over epochs scored in both.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n_epochs,)
        Stage codes (0-4); unscored epochs (-1) are left out.

    Returns
    -------
    accuracy : float
        Fraction of epochs with the same stage (NaN if none is scored in both).
    kappa : float
        Cohen's kappa (NaN if none is scored in both).
    n : int
        Epochs scored in both.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    ok = (t >= 0) & (p >= 0)
    n = int(np.count_nonzero(ok))
    if n == 0:
        return float("nan"), float("nan"), 0
    cm = np.zeros((5, 5))
    np.add.at(cm, (t[ok], p[ok]), 1)
    return float(np.trace(cm) / n), kappa_from_confusion(cm), n


def stage_labels(annotations, n_epochs: int) -> np.ndarray:
    """Per-epoch stages from ``(onset, duration, description)`` annotations.

    Parameters
    ----------
    annotations : iterable of (float, float, str)
        Onset (s from the recording start), duration (s) and text; texts that are not stages
        are ignored (see :func:`headset.stages.parse_stage_annotation`).
    n_epochs : int
        Number of epochs of the recording.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        Stage codes, -1 where no stage annotation covers the epoch's start.
    """
    labels = np.full(n_epochs, UNSCORED, dtype=np.int8)
    for onset, duration, text in annotations:
        code = parse_stage_annotation(str(text))
        if code is None:
            continue
        k0 = int(np.ceil(onset / EPOCH_S - 1e-6))
        k1 = int(np.ceil((onset + max(duration, EPOCH_S)) / EPOCH_S - 1e-6))
        labels[max(k0, 0) : min(k1, n_epochs)] = code
    return labels


def cohen_kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Cohen's kappa over epochs where both are scored (0-4); see :func:`epoch_agreement`."""
    return epoch_agreement(y_true, y_pred)[1]


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Return the expected calibration error of the chosen stage's probability.

    Parameters
    ----------
    probs : ndarray, shape (n, 5)
        Stage probabilities.
    y : ndarray of int, shape (n,)
        True stages (0-4; other values are left out).
    n_bins : int
        Equal-width confidence bins over [0, 1].

    Returns
    -------
    float
        Sum over bins of (share of epochs) x |accuracy - mean confidence|.
    """
    ok = (y >= 0) & (y < len(STAGE_NAMES))
    p, y = probs[ok], y[ok]
    if y.size == 0:
        return float("nan")
    conf = p.max(-1)
    hit = np.argmax(p, -1) == y
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(hit[m].mean() - conf[m].mean())
    return float(ece)


#: Minutes of wake kept on each side of the sleep period in the scored window.
WINDOW_PAD_MIN = 30.0


def expert_labels(hypnogram: str | Path, n_epochs: int) -> np.ndarray:
    """Per-epoch expert stages from an EDF+ hypnogram file (Sleep-EDF ``*-Hypnogram.edf``).

    Parameters
    ----------
    hypnogram : str or Path
        EDF+ file whose annotations are ``Sleep stage W/1/2/3/4/R/?``.
    n_epochs : int
        Number of 30-s epochs of the recording.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        0-4, or -1 where unscored.
    """
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ann = mne.read_annotations(hypnogram)
    return stage_labels(zip(ann.onset, ann.duration, ann.description), n_epochs)


def scored_window(labels: np.ndarray) -> slice:
    """Epochs from :data:`WINDOW_PAD_MIN` before the first to after the last sleep epoch."""
    sleep = np.flatnonzero(np.asarray(labels) >= 1)
    if sleep.size == 0:
        return slice(0, 0)
    pad = int(round(WINDOW_PAD_MIN * 60 / EPOCH_S))
    return slice(max(0, sleep[0] - pad), min(len(labels), sleep[-1] + pad + 1))


@dataclass(frozen=True)
class Agreement:
    """Agreement of a stager with an expert.

    Attributes
    ----------
    n_epochs : int
        Expert-scored epochs compared.
    accuracy, kappa : float
        Epoch agreement and Cohen's kappa (an unscored prediction counts as wrong).
    recall : dict of str to float
        Per expert stage, the fraction the stager gave the same stage.
    confusion : ndarray of int, shape (5, 5)
        Rows expert W N1 N2 N3 R, columns stager.
    ece : float
        Expected calibration error of the stager's confidence (NaN without probabilities).
    """

    n_epochs: int
    accuracy: float
    kappa: float
    recall: dict
    confusion: np.ndarray
    ece: float

    def line(self) -> str:
        """One line: epochs, accuracy, kappa, recall per stage, ECE."""
        rec = " ".join(f"{k} {v:.2f}" for k, v in self.recall.items())
        return (
            f"epochs {self.n_epochs:4d}  acc {self.accuracy:.3f}  kappa {self.kappa:.3f}  "
            f"recall {rec}  ECE {self.ece:.3f}"
        )


def agreement(truth: np.ndarray, stages: np.ndarray, probs: np.ndarray | None = None) -> Agreement:
    """Compare a stager's epochs with the expert's.

    Parameters
    ----------
    truth : ndarray of int, shape (n,)
        Expert stages (epochs with -1 are left out).
    stages : ndarray of int, shape (n,)
        The stager's stages (-1 = unscored, counted as wrong).
    probs : ndarray, shape (n, 5), optional
        The stager's probabilities, for the calibration error.

    Returns
    -------
    Agreement
    """
    truth, stages = np.asarray(truth), np.asarray(stages)
    if truth.shape != stages.shape:
        raise ValueError(f"truth {truth.shape} and stages {stages.shape} differ in shape.")
    keep = truth >= 0
    t, p = truth[keep], stages[keep]
    cm = np.zeros((5, 5), dtype=np.int64)
    ok = p >= 0
    np.add.at(cm, (t[ok], p[ok]), 1)
    n = int(t.size)
    # an unscored prediction is wrong: it counts in its row's total, in no column
    full = cm.astype(float)
    rows = np.bincount(t, minlength=5).astype(float)
    po = np.trace(full) / max(n, 1)
    pe = float(np.sum(rows * full.sum(0))) / max(n, 1) ** 2
    kappa = (po - pe) / (1 - pe) if pe < 1 else kappa_from_confusion(full)
    recall = {
        s: float(cm[i, i] / rows[i]) if rows[i] else float("nan") for i, s in enumerate(STAGE_NAMES)
    }
    ece = float("nan")
    if probs is not None:
        pr = np.asarray(probs)[keep]
        ece = expected_calibration_error(pr[ok], t[ok])
    return Agreement(n, float(po), float(kappa), recall, cm, ece)
