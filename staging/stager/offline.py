"""Whole-recording staging: the same model with context on both sides.

Features are scaled with whole-recording statistics, the offline MLP sees epochs ``k-2 .. k+2``
and the HMM gives forward-backward posterior marginals. :func:`stage_epochs` also runs the
causal path on a whole recording at once (``mode="online"``), which gives the same estimates
as feeding the recording to :class:`~staging.stager.online.OnlineStager` chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp._validate import check_option
from headset.stages import UNSCORED

from .features import EpochFeatures, normalize_offline, normalize_online
from .model import StagingModel, resolve_model


@dataclass
class StagedEpochs:
    """Stages of consecutive epochs.

    Attributes
    ----------
    stages : ndarray of int8, shape (n_epochs,)
        0-4, or -1 where the epoch had no usable data.
    probs : ndarray, shape (n_epochs, 5)
        Probabilities of W, N1, N2, N3, R.
    confidence : ndarray, shape (n_epochs,)
        Probability of the chosen stage (0 for unscored epochs).
    """

    stages: np.ndarray
    probs: np.ndarray
    confidence: np.ndarray


def stage_epochs(
    features: EpochFeatures,
    model: StagingModel | str | None = None,
    mode: str = "offline",
) -> StagedEpochs:
    """Stage a whole recording from its raw epoch features.

    Parameters
    ----------
    features : EpochFeatures
        Raw features of every epoch, from the recording start.
    model : StagingModel or str or Path, optional
        The model (None: the shipped default).
    mode : {"offline", "online"}
        ``"offline"``: whole-recording normalisation, two-sided context, forward-backward.
        ``"online"``: what the live stager would have said at the end of each epoch.

    Returns
    -------
    StagedEpochs
    """
    check_option("mode", mode, ("offline", "online"))
    model = resolve_model(model)
    norm = normalize_offline if mode == "offline" else normalize_online
    x = norm(features, model.prior)
    probs = model.predict(x, features.valid, mode)
    stages = np.argmax(probs, axis=1).astype(np.int8)
    conf = probs[np.arange(len(stages)), stages]
    stages[~features.valid] = UNSCORED
    conf = np.where(features.valid, conf, 0.0)
    return StagedEpochs(stages, probs, conf)
