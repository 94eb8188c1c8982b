"""dreamnet's staging layer: features, stagers, detectors, reports and the ``dreamnet`` CLI.

``staging.score(raw_or_path, eeg=None, eog=None, emg=None, mode="offline")`` stages a whole
recording (see :mod:`staging.stager.score`);
:class:`staging.stager.online.OnlineStager` stages a live stream.
"""

from .stager.score import score

__all__ = ["score"]
