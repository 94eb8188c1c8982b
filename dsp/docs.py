"""Parameter documentation written once and filled into docstrings (MNE's ``docdict`` idea).

A docstring names a recurring parameter with a placeholder on a line of its own,
``%(sfreq)s``, and the function is decorated with :func:`fill_doc`; the placeholder becomes
the entry of :data:`docdict`, indented like the placeholder. One definition of ``sfreq``,
``sos``, ``ch_types``, ... for every function of ``dsp`` (``headset`` and ``staging`` may use
it too). An unknown key fails at import, naming the function and the key.
"""

from __future__ import annotations

import re

__all__ = ["docdict", "fill_doc"]

#: Parameter texts in numpydoc form (first line ``name : type``, description indented by 4).
docdict: dict[str, str] = {
    "sfreq": """
sfreq : float
    Sampling rate in Hz (positive).""",
    "data_rows": """
data : array_like, shape (..., n_samples)
    Signals in µV, time on the last axis: ``(n_channels, n_samples)`` for one epoch or
    ``(n_epochs, n_channels, n_samples)`` for a night (any leading shape).""",
    "sos": """
sos : array_like, shape (n_sections, 6)
    Second-order sections ``[b0, b1, b2, a0, a1, a2]`` with ``a0 == 1``, e.g. from
    ``scipy.signal.butter(..., output="sos")``; must be stable.""",
    "axis": """
axis : int
    Axis along which to filter (the time axis). Default -1.""",
    "check_finite": """
check_finite : bool
    Raise ``ValueError`` if the input holds NaN or infinity (default); False propagates them
    as scipy does.""",
    "n_channels": """
n_channels : int
    Number of channels (rows of every chunk), at least 1.""",
    "ch_types": """
ch_types : sequence of str
    MNE type of each channel: ``eeg``, ``eog``, ``emg``, ``ecg`` or ``misc``.""",
    "mains": """
mains : {50.0, 60.0, None}
    Mains frequency in Hz; None: no mains notch or check.""",
    "sample_flags": """
flags : array_like of uint8, optional
    Per-sample flag bits (:mod:`dsp.flags`: gap, lead-off, saturated, corrupt), shape of the
    signal; a flagged sample holds no usable signal.""",
    "bands": """
bands : mapping or sequence
    Frequency bands in Hz, half-open ``[low, high)``: a mapping ``{name: (low, high)}`` or a
    sequence of ``(name, low, high)`` or ``(low, high)``.""",
    "psd_freqs": """
psd : ndarray, shape (..., n_freqs)
    One-sided power spectral density in µV²/Hz (from :func:`welch_psd` or
    :func:`multitaper_psd`).
freqs : ndarray, shape (n_freqs,)
    Its frequencies in Hz, evenly spaced from 0.""",
    "method": """
method : {"welch", "multitaper"}
    PSD estimator: :func:`welch_psd` with ``window_s`` segments or :func:`multitaper_psd`.""",
    "window_s": """
window_s : float
    Welch segment length in seconds (clipped to the signal; 50 % overlap, periodic Hann).""",
    "nw": """
nw : float
    Multitaper time-half-bandwidth product (``2 nw - 1`` DPSS tapers).""",
}

_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.MULTILINE)


def fill_doc(obj):
    """Replace every ``%(key)s`` line of ``obj``'s docstring by ``docdict[key]``.

    Parameters
    ----------
    obj : callable or class
        Decorated object; its ``__doc__`` is rewritten in place.

    Returns
    -------
    callable or class
        ``obj`` itself.

    Raises
    ------
    KeyError
        A placeholder names no entry of :data:`docdict`.
    """
    doc = obj.__doc__
    if not doc:
        return obj

    def expand(m: re.Match) -> str:
        indent, key = m.group(1), m.group(2)
        if key not in docdict:
            raise KeyError(f"{obj.__qualname__}: no entry {key!r} in dsp.docs.docdict.")
        lines = docdict[key].strip("\n").splitlines()
        return "\n".join(indent + line if line else line for line in lines)

    obj.__doc__ = _PLACEHOLDER.sub(expand, doc)
    return obj
