"""dreamnet's DSP core: numba kernels behind scipy-compatible and streaming interfaces.

Signals are microvolts, float64, shape ``(n_channels, n_samples)`` (DESIGN 3). Filter design
stays with :mod:`scipy.signal` (``butter``, ``iirnotch``, ... with ``output="sos"``).

Public API
----------
sosfilt, sosfiltfilt
    Drop-in replacements for :func:`scipy.signal.sosfilt` / :func:`scipy.signal.sosfiltfilt`.
SOSFilter
    Streaming cascade with state: ``y = filt(chunk)``, ``filt.reset()``.
FilterBank
    The headset's standard chain per channel type (band-pass + mains notch), streaming.
Resampler, resample_poly
    Streaming and offline polyphase resampling equal to :func:`scipy.signal.resample_poly`.
spectral
    Band power (Welch, multitaper), relative power, spectral edge and entropy, Hjorth,
    band envelopes, per epoch and channel.
quality
    Per epoch and channel quality flags (flat, saturation, lead-off, mains, movement).
"""

from . import quality, spectral
from .filterbank import FilterBank, design_chain
from .iir import SOSFilter, sosfilt, sosfiltfilt, validate_sos
from .quality import EpochQuality, QualityThresholds, epoch_quality
from .resample import Resampler, resample_poly
from .spectral import bandpower

__all__ = [
    "EpochQuality",
    "FilterBank",
    "QualityThresholds",
    "Resampler",
    "SOSFilter",
    "bandpower",
    "design_chain",
    "epoch_quality",
    "quality",
    "resample_poly",
    "sosfilt",
    "sosfiltfilt",
    "spectral",
    "validate_sos",
]
