"""Whole-recording staging: the same model with context on both sides.

Features are scaled with whole-recording statistics, the offline MLP sees epochs ``k-2 .. k+2``
and the HMM gives forward-backward posterior marginals. :func:`stage_epochs` also runs the
causal path on a whole recording at once (``mode="online"``), which gives the same estimates
as feeding the recording to :class:`~staging.stager.online.OnlineStager` chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.validate import check_option
from headset.stages import UNSCORED

from .features import EpochFeatures, modality_of, normalize_offline, normalize_online
from .model import StagingModel, resolve_model
from .physiology import flat_spectrum_evidence, high_band_floor


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
    modality : str
        The networks used (``"eeg"``, ``"eeg+eog"``, ``"eeg+emg"`` or ``"eeg+eog+emg"``).
    distance : float
        Distance of the recording's features from the training recordings
        (:meth:`~staging.stager.model.StagingModel.distance`; NaN when too short).
    ood_threshold : float
        The model's out-of-distribution threshold for ``distance``.
    """

    stages: np.ndarray
    probs: np.ndarray
    confidence: np.ndarray
    modality: str = "eeg"
    distance: float = float("nan")
    ood_threshold: float = float("inf")

    @property
    def out_of_distribution(self) -> bool:
        """True when the recording lies farther from the training data than the model knows."""
        return bool(self.distance > self.ood_threshold)


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
    modality = modality_of(features.indicators)
    floor = high_band_floor(features.values, features.valid, causal=mode == "online")
    flat = flat_spectrum_evidence(features.values, floor)
    probs = model.predict(x, features.valid, mode, modality, flat)
    stages = np.argmax(probs, axis=1).astype(np.int8)
    conf = probs[np.arange(len(stages)), stages]
    stages[~features.valid] = UNSCORED
    conf = np.where(features.valid, conf, 0.0)
    dist = model.distance(normalize_offline(features, model.prior), features.valid, modality)
    return StagedEpochs(stages, probs, conf, modality, dist, model.ood_threshold)
