"""Readable input validation shared by every dreamnet package (public: ``dsp.validate``).

Small helpers in the spirit of MNE's ``_check_option`` and ``_validate_type``: they raise
``ValueError``/``TypeError`` whose message names the parameter, what was allowed and what
came. Every public function of ``dsp`` checks its inputs with them at its boundary; ``dsp`` is
the lowest layer (numpy/scipy/numba only), so ``headset`` and ``staging`` import them from
here too. Importing this module does not import numba.

=====================  ============================================================
helper                 checks
=====================  ============================================================
:func:`check_option`   a value is one of a fixed set (``ValueError``)
:func:`validate_type`  a value is an instance of some types (``TypeError``)
:func:`check_positive` a positive (or non-negative) finite number, returned as float
:func:`check_int`      an int (not a bool) within bounds, returned as int
:func:`as_signal`      a real numeric array of at least one dimension
:func:`check_ch_types` one MNE channel type (str) per channel
:func:`check_channels` channel names and types of equal length
=====================  ============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "as_signal",
    "check_ch_types",
    "check_channels",
    "check_int",
    "check_option",
    "check_positive",
    "validate_type",
]


def check_option(name: str, value, allowed: Iterable) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``.

    Parameters
    ----------
    name : str
        Name of the parameter, used in the message.
    value : object
        The value that came.
    allowed : iterable
        The accepted values.
    """
    allowed = tuple(allowed)
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(
            f"Invalid value for the {name!r} parameter. Allowed values are {options}, "
            f"but got {value!r} instead."
        )


def validate_type(name: str, value, types: type | tuple[type, ...]) -> None:
    """Raise ``TypeError`` unless ``value`` is an instance of ``types``.

    Parameters
    ----------
    name : str
        Name of the parameter, used in the message.
    value : object
        The value that came.
    types : type or tuple of type
        The accepted types.
    """
    if not isinstance(value, types):
        tnames = types if isinstance(types, tuple) else (types,)
        expected = " or ".join(t.__name__ for t in tnames)
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} instead.")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float, raising ``ValueError`` if it is not a positive finite number.

    Parameters
    ----------
    name : str
        Name of the parameter, used in the message.
    value : float
        The number to check.
    allow_zero : bool
        Accept 0 as well.

    Returns
    -------
    float
        The value as a Python float.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} instead.")
    v = float(value)
    ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        which = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {which} finite number, got {value!r}.")
    return v


def check_int(name: str, value, low: int | None = 1, high: int | None = None) -> int:
    """Return ``value`` as int, raising unless it is an integer in ``[low, high]``.

    Parameters
    ----------
    name : str
        Name of the parameter, used in the message.
    value : int
        The number to check (Python or numpy integer; ``bool`` is refused).
    low, high : int or None
        Inclusive bounds; None: unbounded on that side. Default: at least 1.

    Returns
    -------
    int
        The value as a Python int.

    Raises
    ------
    TypeError
        Not an integer.
    ValueError
        Outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} instead.")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        if high is not None:
            wanted = f"an int <= {high}" if low is None else f"an int between {low} and {high}"
        else:
            wanted = {0: "a non-negative int", 1: "a positive int"}.get(low, f"an int >= {low}")
        raise ValueError(f"{name} must be {wanted}, got {v}.")
    return v


def as_signal(x, name: str = "x") -> np.ndarray:
    """Return ``x`` as a real numeric array of at least one dimension (no copy if possible).

    Parameters
    ----------
    x : array_like
        The signal (any shape with time on some axis, e.g. ``(n_channels, n_samples)``).
    name : str
        Name of the parameter, used in the message.

    Returns
    -------
    ndarray
        ``x`` as an array; booleans become float64, other dtypes are kept.

    Raises
    ------
    TypeError
        None, a string, or not real numbers (complex, object, ...).
    ValueError
        A scalar.
    """
    if x is None or isinstance(x, str | bytes):
        raise TypeError(f"{name} must be a numeric array, got {x!r}.")
    arr = np.asarray(x)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be a real numeric array, got dtype {arr.dtype} "
            "(complex signals: use scipy.signal)."
        )
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a scalar.")
    return arr


def check_ch_types(ch_types: Sequence[str], n_channels: int | None = None) -> tuple[str, ...]:
    """Return the channel types as a tuple of str, one per channel.

    Parameters
    ----------
    ch_types : sequence of str
        MNE channel types (``eeg``, ``eog``, ``emg``, ``ecg``, ``misc``, ...).
    n_channels : int or None
        Number of channels the types must match; None: any number but at least one.

    Returns
    -------
    tuple of str
        The types, unchanged.
    """
    if isinstance(ch_types, str) or not hasattr(ch_types, "__iter__"):
        raise TypeError(f"ch_types must be a sequence of str (one per channel), got {ch_types!r}.")
    types = tuple(ch_types)
    for t in types:
        validate_type("ch_types item", t, str)
    if n_channels is None and not types:
        raise ValueError("ch_types is empty: at least one channel is needed.")
    if n_channels is not None and len(types) != n_channels:
        raise ValueError(
            f"ch_types must list one type per channel ({n_channels}), got {len(types)}: {types!r}."
        )
    return types


def check_channels(ch_names: Sequence[str], ch_types: Sequence[str]) -> tuple[tuple, tuple]:
    """Return channel names and types as tuples, raising ``ValueError`` if their lengths differ.

    Parameters
    ----------
    ch_names : sequence of str
        Channel names.
    ch_types : sequence of str
        Channel types, one per name.

    Returns
    -------
    ch_names, ch_types : tuple of str
        The two sequences as tuples.
    """
    names, types = tuple(ch_names), tuple(ch_types)
    if len(names) != len(types):
        raise ValueError(f"{len(names)} channel names but {len(types)} channel types.")
    return names, types
