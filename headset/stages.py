"""Sleep-stage codes and annotation texts (DESIGN section 3).

Stages are integers ``W=0, N1=1, N2=2, N3=3, R=4`` and ``UNSCORED=-1``; their strings are
``W N1 N2 N3 R`` and ``?``. Epochs are 30 s long and aligned to the recording start.
"""

from __future__ import annotations

import re

import numpy as np

W, N1, N2, N3, R = 0, 1, 2, 3, 4
UNSCORED = -1
STAGES = (W, N1, N2, N3, R)
STAGE_NAMES = ("W", "N1", "N2", "N3", "R")
EPOCH_S = 30.0

#: Annotation prefix of the simulator's ground truth (``Sleep stage N2``).
TRUE_STAGE_PREFIX = "Sleep stage "
#: Annotation prefix of the pipeline's conclusions (``Scored stage N2``).
SCORED_STAGE_PREFIX = "Scored stage "

_RK = {
    "W": W,
    "1": N1,
    "2": N2,
    "3": N3,
    "4": N3,
    "R": R,
    "N1": N1,
    "N2": N2,
    "N3": N3,
    "N4": N3,
    "REM": R,
    "?": UNSCORED,
}
_STAGE_RE = re.compile(r"^(?:sleep|scored)\s+stage\s+(\S+)\s*$", re.IGNORECASE)
_CODES = "W=0, N1=1, N2=2, N3=3, R=4, unscored=-1"


def check_stage(stage, name: str = "stage", *, unscored: bool = True) -> int:
    """Return a stage code as an int, raising unless it is one (the one scalar stage check).

    Parameters
    ----------
    stage : int
        Stage code: ``W=0, N1=1, N2=2, N3=3, R=4`` or ``UNSCORED=-1`` (a Python or numpy
        integer, or a float with an integer value).
    name : str
        Name of the parameter, used in the message.
    unscored : bool
        Accept -1 (unscored); False allows only the five stages.

    Returns
    -------
    int
        The code.

    Raises
    ------
    TypeError
        Not a number (or a bool).
    ValueError
        A fraction or a code outside the range.
    """
    if isinstance(stage, bool) or not isinstance(stage, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be an integer stage code, got {type(stage).__name__}.")
    lo = UNSCORED if unscored else W
    if not np.isfinite(stage) or int(stage) != stage or not lo <= int(stage) <= R:
        codes = _CODES if unscored else _CODES.rsplit(", ", 1)[0]
        raise ValueError(f"{name} must be a stage code {lo}..{R} ({codes}), got {stage!r}.")
    return int(stage)


def check_stages(stages, name: str = "hypnogram") -> np.ndarray:
    """Return stage codes per epoch as an int8 array, raising unless they all are codes.

    The array form of :func:`check_stage` (-1 allowed).

    Parameters
    ----------
    stages : array_like of int, shape (n_epochs,)
        Stage per epoch: ``W=0, N1=1, N2=2, N3=3, R=4, unscored=-1`` (integers, or floats
        with integer values).
    name : str
        Name of the parameter, used in the messages.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        The codes.
    """
    h = np.asarray(stages)
    if h.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_epochs,), got shape {h.shape}.")
    if h.size == 0:
        raise ValueError(f"{name} is empty: no epoch.")
    if not np.issubdtype(h.dtype, np.integer):
        if not np.issubdtype(h.dtype, np.floating) or not np.all(np.isfinite(h)):
            raise TypeError(f"{name} must hold integer stage codes, got dtype {h.dtype}.")
        if np.any(h != np.round(h)):
            raise ValueError(f"{name} must hold integer stage codes -1..4, got fractions.")
    bad = (h < UNSCORED) | (h > R)
    if np.any(bad):
        raise ValueError(
            f"{name} codes must be -1..4 ({_CODES}), got {h[bad][0]} at epoch "
            f"{int(np.flatnonzero(bad)[0])}."
        )
    return h.astype(np.int8)


def stage_name(stage: int) -> str:
    """Return the text of a stage code (``2 -> "N2"``, ``-1 -> "?"``).

    Parameters
    ----------
    stage : int
        Stage code, -1 to 4 (see :func:`check_stage`).

    Returns
    -------
    str
        ``W``, ``N1``, ``N2``, ``N3``, ``R`` or ``?``.
    """
    stage = check_stage(stage)
    return "?" if stage == UNSCORED else STAGE_NAMES[stage]


def parse_stage_annotation(description: str) -> int | None:
    """Return the stage code of a stage annotation, or None if it is not one.

    Accepts dreamnet's texts (``Sleep stage N2``, ``Scored stage R``) and the Sleep-EDF /
    Rechtschaffen & Kales texts (``Sleep stage 1..4``, ``Sleep stage R``, ``Sleep stage ?``,
    ``Sleep stage W``); ``Movement time`` maps to unscored.

    Parameters
    ----------
    description : str
        The annotation text.

    Returns
    -------
    int or None
        The stage code (-1 for unscored), or None for a text that is not a stage.
    """
    text = description.strip()
    if text.lower() == "movement time":
        return UNSCORED
    m = _STAGE_RE.match(text)
    if m is None:
        return None
    return _RK.get(m.group(1).upper())
