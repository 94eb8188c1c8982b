"""Sleep-stage codes and annotation texts (DESIGN section 3).

Stages are integers ``W=0, N1=1, N2=2, N3=3, R=4`` and ``UNSCORED=-1``; their strings are
``W N1 N2 N3 R`` and ``?``. Epochs are 30 s long and aligned to the recording start.
"""

from __future__ import annotations

import re

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


def stage_name(stage: int) -> str:
    """Return the text of a stage code (``2 -> "N2"``, ``-1 -> "?"``).

    Parameters
    ----------
    stage : int
        Stage code, -1 to 4.

    Returns
    -------
    str
        ``W``, ``N1``, ``N2``, ``N3``, ``R`` or ``?``.
    """
    stage = int(stage)
    if stage == UNSCORED:
        return "?"
    if stage not in STAGES:
        raise ValueError(f"stage must be one of -1, 0, 1, 2, 3, 4, got {stage}.")
    return STAGE_NAMES[stage]


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
