"""Readable input validation shared by every dreamnet package.

Two small helpers in the spirit of MNE's ``_check_option`` and ``_validate_type``:
they raise ``ValueError``/``TypeError`` whose message names the parameter, what was
allowed and what came. ``dsp`` is the lowest layer (numpy/scipy/numba only), so
``headset`` and ``staging`` import these from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


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
