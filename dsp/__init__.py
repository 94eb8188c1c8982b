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
    The one spectral engine: ``welch_psd`` (scipy's Welch plus segment weights),
    ``multitaper_psd``, ``band_power`` (absolute or relative), and on top of them band power,
    spectral edge and entropy, Hjorth, band envelopes, per epoch and channel.
quality
    Per epoch and channel quality flags (flat, saturation, lead-off, mains, movement).
flags
    The per-sample flag bits of a stream (gap, lead-off, saturated, corrupt).
validate, docs
    Input checks used at every boundary (also by ``headset`` and ``staging``) and the shared
    parameter documentation (``docdict``, ``fill_doc``).

The names are loaded on first use (PEP 562), so ``import dsp.validate`` (used by every
package) does not import numba; the numba kernels load from the on-disk cache the first time
a filter runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - for static analysers only
    from . import docs, filterbank, flags, iir, quality, resample, spectral, validate
    from .filterbank import FilterBank, design_chain
    from .iir import SOSFilter, sosfilt, sosfiltfilt, validate_sos
    from .quality import EpochQuality, QualityThresholds, epoch_quality
    from .resample import Resampler, resample_poly
    from .spectral import bandpower

_EXPORTS = {
    "sosfilt": "iir",
    "sosfiltfilt": "iir",
    "SOSFilter": "iir",
    "validate_sos": "iir",
    "FilterBank": "filterbank",
    "design_chain": "filterbank",
    "Resampler": "resample",
    "resample_poly": "resample",
    "bandpower": "spectral",
    "epoch_quality": "quality",
    "EpochQuality": "quality",
    "QualityThresholds": "quality",
}
_SUBMODULES = ("docs", "filterbank", "flags", "iir", "quality", "resample", "spectral", "validate")

__all__ = [  # noqa: F822 - resolved lazily by __getattr__
    "EpochQuality",
    "FilterBank",
    "QualityThresholds",
    "Resampler",
    "SOSFilter",
    "bandpower",
    "design_chain",
    "docs",
    "epoch_quality",
    "filterbank",
    "flags",
    "iir",
    "quality",
    "resample",
    "resample_poly",
    "sosfilt",
    "sosfiltfilt",
    "spectral",
    "validate",
    "validate_sos",
]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dsp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))
