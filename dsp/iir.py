"""IIR filtering with second-order sections: scipy-compatible functions and a streaming filter.

``sosfilt`` and ``sosfiltfilt`` take the arguments of their :mod:`scipy.signal` namesakes and
return the same numbers (the recurrence is evaluated in scipy's order, so on x86-64, where
neither uses fused multiply-adds, bit for bit; elsewhere to rounding); they are faster because
the numba kernel runs several channels at once. :class:`SOSFilter` keeps the state between
chunks of a live stream; its output does not depend on how the stream is cut into chunks
(bit for bit, on every platform).

Validation
----------
``sos`` must have shape ``(n_sections, 6)`` with ``sos[:, 3] == 1``, finite coefficients and
poles strictly inside the unit circle (an unstable cascade raises ``ValueError`` naming the
section); inputs must be real (``float32``, ``float64`` or integer: complex and ``longdouble``
raise ``TypeError``, use :mod:`scipy.signal` for those).

NaN policy
----------
* ``sosfilt``/``sosfiltfilt`` (offline): a NaN or infinity in ``x`` or ``zi`` raises
  ``ValueError`` (found for free: a non-finite input leaves a non-finite final state).
  ``check_finite=False`` propagates them instead, as scipy does.
* :class:`SOSFilter` (streaming): never raises on values, never lets a NaN into its state. A
  non-finite sample is replaced by the channel's last finite sample (sample-and-hold) before
  filtering, and counted in :attr:`SOSFilter.held`. Later output is therefore never
  corrupted; the caller sees how many samples were invented and can flag them.
"""

from __future__ import annotations

import importlib
import os

import numpy as np

from . import _biquad_ref as _layout
from .docs import fill_doc
from .validate import as_signal, check_int, check_option

__all__ = [
    "KERNELS_ENV",
    "SOSFilter",
    "kernels",
    "set_kernels",
    "sosfilt",
    "sosfiltfilt",
    "steady_state_zi",
    "validate_sos",
]

_F64 = np.dtype(np.float64)
_SUPPORTED = (np.dtype(np.float32), _F64)
_empty = np.empty

#: Environment variable that chooses the kernels at import: ``simd`` (default) or ``reference``.
KERNELS_ENV = "DREAMNET_DSP_KERNELS"
_KERNEL_MODULES = {"simd": "._biquad", "reference": "._biquad_ref"}
_kernels_name = "simd"  # set_kernels() below binds _offline and _stream


def set_kernels(name: str) -> str:
    """Choose the biquad kernels every filter of this process runs from now on.

    Parameters
    ----------
    name : {"simd", "reference"}
        ``"simd"``: the vector kernels of :mod:`dsp._biquad` (numba internals, fast).
        ``"reference"``: the plain ``@njit`` kernels of :mod:`dsp._biquad_ref` (same output
        bit for bit, slower on many channels; for checking a new numba, or running on one
        that breaks the vector code). :mod:`dsp._biquad` is imported only when chosen.

    Returns
    -------
    str
        The kernels chosen before.
    """
    global _kernels_name, _offline, _stream
    check_option("kernels", name, tuple(_KERNEL_MODULES))
    module = importlib.import_module(_KERNEL_MODULES[name], __package__)
    before, _kernels_name = _kernels_name, name
    _offline, _stream = module.sosfilt_offline, module.sos_stream
    return before


def kernels() -> str:
    """Return the name of the biquad kernels in use (``"simd"`` or ``"reference"``)."""
    return _kernels_name


def _kernels_from_env() -> str:
    name = os.environ.get(KERNELS_ENV, "simd").strip().lower() or "simd"
    if name not in _KERNEL_MODULES:
        raise ValueError(
            f"{KERNELS_ENV} must be 'simd' or 'reference', got {os.environ[KERNELS_ENV]!r}."
        )
    return name


set_kernels(_kernels_from_env())


def validate_sos(sos) -> np.ndarray:
    """Check a second-order-section array and return it as a 2-D float array.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
        Rows ``[b0, b1, b2, a0, a1, a2]`` as returned by ``scipy.signal.butter(...,
        output="sos")``.

    Returns
    -------
    ndarray, shape (n_sections, 6)
        float64 (float32 is kept).

    Raises
    ------
    TypeError
        Not a real numeric array.
    ValueError
        Wrong shape, no section, ``a0 != 1``, non-finite coefficients or an unstable section.
    """
    if sos is None or isinstance(sos, str | bytes):
        raise TypeError(f"sos must be an array of shape (n_sections, 6), got {sos!r}.")
    arr = np.asarray(sos)
    if arr.dtype.kind not in "biuf" or arr.dtype.itemsize > 8:
        raise TypeError(f"sos must be a real float array, got dtype {arr.dtype}.")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(_F64)
    if arr.ndim == 1 and arr.shape[0] == 6:
        arr = arr[np.newaxis]
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise ValueError(f"sos must have shape (n_sections, 6), got {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError("sos has no sections (shape (0, 6)).")
    if not np.isfinite(arr).all():
        raise ValueError("sos contains NaN or infinite coefficients.")
    if not (arr[:, 3] == 1).all():
        raise ValueError(
            f"sos[:, 3] (a0) must be 1 in every section, got {arr[:, 3].tolist()}; "
            "normalise each row by its a0."
        )
    a1 = arr[:, 4].astype(_F64)
    a2 = arr[:, 5].astype(_F64)
    # Poles of z^2 + a1 z + a2 inside the unit circle <=> |a2| < 1 and |a1| < 1 + a2.
    bad = np.flatnonzero(~((np.abs(a2) < 1.0) & (np.abs(a1) < 1.0 + a2)))
    if bad.size:
        s = int(bad[0])
        mag = float(np.abs(np.roots([1.0, a1[s], a2[s]])).max())
        raise ValueError(
            f"sos section {s} is unstable: its poles have magnitude {mag:.6g} >= 1 "
            f"(a1={a1[s]:.6g}, a2={a2[s]:.6g}). Design the filter with output='sos' and "
            "check its order and cut-offs."
        )
    return arr


def steady_state_zi(sos) -> np.ndarray:
    """State of a cascade in steady state for a unit-step input (``scipy.signal.sosfilt_zi``).

    Closed form for each section (direct form II transposed): with ``g = sum(b) / sum(a)``,
    ``z1 = b2 - a2 g`` and ``z0 = b1 + b2 - (a1 + a2) g``, scaled by the DC gain of the
    sections before it (as scipy). Avoids importing :mod:`scipy.signal` on the streaming path;
    agrees with scipy to rounding.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
        Validated, stable second-order sections.

    Returns
    -------
    ndarray of float64, shape (n_sections, 2)
        Multiply by the input level to get the initial state.
    """
    sos = np.asarray(sos, dtype=_F64)
    zi = np.empty((sos.shape[0], 2))
    scale = 1.0
    for s, (b0, b1, b2, _, a1, a2) in enumerate(sos):
        g = (b0 + b1 + b2) / (1.0 + a1 + a2)
        zi[s, 1] = scale * (b2 - a2 * g)
        zi[s, 0] = scale * (b1 + b2 - (a1 + a2) * g)
        scale *= g
    return zi


def _axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {ndim}.")
    return int(axis) % ndim


def _work_dtype(*arrays) -> np.dtype:
    dt = np.result_type(*arrays)
    if dt.kind in "biu":
        dt = _F64
    if dt not in _SUPPORTED:
        raise TypeError(
            f"dsp filters compute in float32 or float64, the inputs give {dt} "
            "(use scipy.signal for complex or longdouble data)."
        )
    return dt


def _raise_nonfinite(zf: np.ndarray, what: str) -> None:
    ok = np.isfinite(zf).reshape(zf.shape[0], -1).all(axis=1)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"{what} contains NaN or infinite values (signal {row} of {zf.shape[0]}, counting "
            "every signal along the filtered axis). Clean the data (e.g. interpolate) or pass "
            "check_finite=False to propagate them as scipy does."
        )


@fill_doc
def sosfilt(sos, x, axis=-1, zi=None, *, check_finite=True):
    """Filter data along one dimension with cascaded second-order sections.

    Drop-in replacement for :func:`scipy.signal.sosfilt`: same arguments, same defaults,
    same output (bit for bit on x86-64), several times faster on multichannel data. Unlike
    scipy, non-finite input raises by default (see ``check_finite``) and unstable or
    non-normalised ``sos`` is refused; complex data is not supported.

    Parameters
    ----------
    %(sos)s
    x : array_like
        Signal, any number of dimensions (e.g. ``(n_channels, n_samples)`` in µV).
    %(axis)s
    zi : array_like or None
        Initial state, shape ``(n_sections, ..., 2, ...)`` where ``...`` is the shape of
        ``x`` with ``x.shape[axis]`` replaced by 2 (as in scipy).
    %(check_finite)s

    Returns
    -------
    y : ndarray
        Filtered signal, shape of ``x``; dtype ``result_type(sos, x, zi)`` (float32 or
        float64).
    zf : ndarray
        Final state, shape of ``zi``; returned only when ``zi`` is given.
    """
    sos = validate_sos(sos)
    x = as_signal(x)
    ax = _axis(axis, x.ndim)
    ns = sos.shape[0]
    if zi is not None:
        zi = as_signal(zi, "zi")
        dtype = _work_dtype(sos, x, zi)
        expected = (ns,) + x.shape[:ax] + (2,) + x.shape[ax + 1 :]
        if zi.shape != expected:
            raise ValueError(
                f"Invalid zi shape. With axis={axis!r}, an input with shape {x.shape}, and an "
                f"sos array with {ns} sections, zi must have shape {expected}, got {zi.shape}."
            )
        if check_finite and not np.isfinite(zi).all():
            raise ValueError("zi contains NaN or infinite values.")
    else:
        dtype = _work_dtype(sos, x)
    n = x.shape[ax]
    xm = np.moveaxis(x, ax, -1)
    lead = xm.shape[:-1]
    m = int(np.prod(lead, dtype=np.int64))
    src = xm.reshape(m, n)
    if src.dtype == dtype and src.flags.c_contiguous:
        # Read x, write a fresh array: one pass over memory.
        out = _empty((m, n), dtype=dtype)
    else:
        # Converting anyway: filter the converted copy in place.
        src = out = np.array(src, dtype=dtype, order="C")
    if zi is None:
        z = np.zeros((m, ns, 2), dtype=dtype)
    else:
        z = np.moveaxis(zi, [0, ax + 1], [-2, -1]).reshape(m, ns, 2).astype(dtype, order="C")
    _offline(sos.astype(dtype, copy=False), src, out, z, False)
    if check_finite and n:
        _raise_nonfinite(z, "x")
    y = np.moveaxis(out.reshape(lead + (n,)), -1, ax)
    if zi is None:
        return y
    zf = np.moveaxis(z.reshape(lead + (ns, 2)), [-2, -1], [0, ax + 1])
    return y, zf


def _pad(xm: np.ndarray, buf: np.ndarray, edge: int, padtype) -> None:
    """Write ``xm`` (m, n) and its extensions of ``edge`` samples each side into ``buf``."""
    n = xm.shape[1]
    buf[:, edge : edge + n] = xm
    if edge == 0:
        return
    # Same expressions as scipy.signal._arraytools (computed in the dtype of x).
    if padtype == "odd":
        left = 2 * xm[:, :1] - xm[:, edge:0:-1]
        right = 2 * xm[:, -1:] - xm[:, -2 : -(edge + 2) : -1]
    elif padtype == "even":
        left = xm[:, edge:0:-1]
        right = xm[:, -2 : -(edge + 2) : -1]
    else:
        left = xm[:, :1]
        right = xm[:, -1:]
    buf[:, :edge] = left
    buf[:, edge + n :] = right


@fill_doc
def sosfiltfilt(sos, x, axis=-1, padtype="odd", padlen=None, *, check_finite=True):
    """Zero-phase forward-backward filtering with cascaded second-order sections.

    Drop-in replacement for :func:`scipy.signal.sosfiltfilt`: same arguments, same defaults,
    same output (bit for bit on x86-64), with one working copy instead of scipy's three.

    Parameters
    ----------
    %(sos)s
    x : array_like
        Signal, any number of dimensions (e.g. ``(n_channels, n_samples)`` in µV).
    %(axis)s
    padtype : {"odd", "even", "constant", None}
        Extension of the signal at both ends before filtering (as scipy). None: no padding.
    padlen : int or None
        Samples of extension each side. None: ``3 * (2 * n_sections + 1 - min(n_zeros_b2,
        n_zeros_a2))`` as scipy. The signal must be longer than ``padlen``.
    %(check_finite)s

    Returns
    -------
    ndarray
        Filtered signal, shape of ``x``; dtype that of ``sos``, ``x`` and
        ``scipy.signal.sosfilt_zi(sos)`` together (float32 or float64), as in scipy.
    """
    sos = validate_sos(sos)
    x = as_signal(x)
    ax = _axis(axis, x.ndim)
    check_option("padtype", padtype, ("odd", "even", "constant", None))
    if padlen is not None:
        padlen = check_int("padlen", padlen, low=0)
    ns = sos.shape[0]
    ntaps = 2 * ns + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    if padtype is None:
        edge = 0
    else:
        edge = ntaps * 3 if padlen is None else int(padlen)
    n = x.shape[ax]
    if n <= edge:
        raise ValueError(
            f"The length of the input vector x must be greater than padlen, which is {edge} "
            f"(got {n} samples along axis {axis})."
        )
    from scipy.signal import sosfilt_zi  # scipy's own, so that the result is scipy's

    zic = sosfilt_zi(sos)  # (n_sections, 2)
    # scipy computes in the type of sos, x and this state (float64 in older releases even for
    # float32 filters, float32 in scipy 1.17): following it keeps the results identical.
    dtype = _work_dtype(sos, x, zic)
    xm = np.moveaxis(x, ax, -1)
    lead = xm.shape[:-1]
    m = int(np.prod(lead, dtype=np.int64))
    xm = xm.reshape(m, n)
    buf = np.empty((m, n + 2 * edge), dtype=dtype)
    _pad(xm, buf, edge, padtype)
    sosd = sos.astype(dtype, copy=False)
    z = np.ascontiguousarray(zic[np.newaxis] * buf[:, :1, np.newaxis], dtype=dtype)
    _offline(sosd, buf, buf, z, False)
    if check_finite:
        _raise_nonfinite(z, "x")
    z = np.ascontiguousarray(zic[np.newaxis] * buf[:, -1:, np.newaxis], dtype=dtype)
    _offline(sosd, buf, buf, z, True)
    y = buf[:, edge : edge + n].reshape(lead + (n,))
    return np.moveaxis(y, -1, ax)


@fill_doc
class SOSFilter:
    """Streaming cascade of second-order sections with its state carried between chunks.

    ``y = filt(chunk)`` filters a ``(n_channels, n)`` chunk and returns the output; feeding a
    signal in any split gives the same output as one call, bit for bit, and the same output as
    :func:`scipy.signal.sosfilt` given the same initial state.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6) or (n_channels, n_sections, 6)
        Second-order sections, shared by every channel or one cascade per channel (pad a
        shorter cascade with identity sections ``[1, 0, 0, 1, 0, 0]``). Must be stable.
    %(n_channels)s
    init : {"steady", "zeros"}
        ``"steady"`` (default): each channel's state is set, at its first finite sample
        ``v``, to the steady state of a constant input ``v`` (:func:`steady_state_zi`, i.e.
        ``scipy.signal.sosfilt_zi(sos) * v``), so a DC offset produces no start-up transient
        (as mne-lsl does with the first chunk; the first *sample* is used rather than the
        chunk mean so that the output does not depend on the chunking). ``"zeros"``: zero
        state, as ``scipy.signal.sosfilt``.

    Notes
    -----
    NaN policy: a non-finite sample (NaN, +-inf) is replaced by the channel's last finite
    sample before filtering; the number replaced in the last call is :attr:`held`. With
    ``init="steady"``, a channel whose samples are all non-finite so far outputs 0 and starts
    at its first finite sample. If the state of a channel ever overflows (finite inputs near
    1e308) the channel is restarted and :attr:`n_restarts` counts it. The state therefore never
    holds a NaN.

    The per-call cost is one numba call plus a few attribute checks: pass C-contiguous float64
    chunks with ``n_channels`` rows to stay on the fast path (other inputs are converted).
    """

    def __init__(self, sos, n_channels, *, init="steady"):
        nch = check_int("n_channels", n_channels)
        check_option("init", init, ("steady", "zeros"))
        arr = np.asarray(sos) if not isinstance(sos, str | bytes) else sos
        if isinstance(arr, np.ndarray) and arr.ndim == 3:
            if arr.shape[0] != nch:
                raise ValueError(
                    f"per-channel sos has {arr.shape[0]} cascades but n_channels={nch}."
                )
            per = np.stack([validate_sos(a).astype(_F64) for a in arr])
        else:
            one = validate_sos(sos).astype(_F64)
            per = np.broadcast_to(one, (nch,) + one.shape)
        ns = per.shape[1]
        self._nch = nch
        self._ns = ns
        self._init = init
        self._sos = np.array(per)  # (n_ch, ns, 6)
        self._sos.setflags(write=False)
        lanes = _layout.LANES
        nt = -(-nch // lanes)
        size = _layout.stream_state_size(ns, nch)
        raw = np.zeros(size + _layout.ALIGN // 8)
        off = (-raw.ctypes.data % _layout.ALIGN) // 8
        state = raw[off : off + size]  # aligned for the vector loads
        state[0] = ns
        state[2] = nt
        state[3] = nch
        # Views of the packed state, each (quantity, section, tile, lane); padding lanes
        # (channels nch .. nt * lanes - 1) keep zero coefficients.
        o = _layout.STREAM_HEADER
        views = []
        for q in (5, 2, 2):
            k = nt * ns * q * lanes
            views.append(state[o : o + k].reshape(nt, ns, q, lanes).transpose(2, 1, 0, 3))
            o += k
        coef, zic, self._z = views
        self._hold = state[o : o + nch]
        o += nt * lanes
        self._started = state[o : o + nch]
        self._state = state
        self._lanes = np.zeros(2 * lanes, dtype=np.int64)  # kernel scratch
        per_lane = np.zeros((nt * lanes, ns, 6))
        per_lane[:nch] = self._sos
        coef[...] = per_lane[..., [0, 1, 2, 4, 5]].transpose(2, 1, 0).reshape(coef.shape)
        zic_cache: dict[bytes, np.ndarray] = {}
        zic_lane = np.zeros((nt * lanes, ns, 2))
        for c in range(nch):
            key = self._sos[c].tobytes()
            if key not in zic_cache:
                zic_cache[key] = steady_state_zi(self._sos[c])
            zic_lane[c] = zic_cache[key]
        zic[...] = zic_lane.transpose(2, 1, 0).reshape(zic.shape)
        #: Number of non-finite samples replaced (held) in the last call.
        self.held = 0
        self.reset()

    # -- the hot path ---------------------------------------------------------------------
    def __call__(self, x, out=None):
        """Filter one chunk, continuing from the previous one.

        Parameters
        ----------
        x : ndarray, shape (n_channels, n_samples)
            Chunk in µV (float64 C-contiguous is the fast path; other real dtypes and layouts
            are converted). ``n_samples`` may be 0.
        out : ndarray or None
            Output array, float64 C-contiguous of the shape of ``x`` (may be ``x`` itself).

        Returns
        -------
        ndarray of float64, shape (n_channels, n_samples)
            Filtered chunk.
        """
        if out is None:
            try:  # the fast path: the kernel's signature checks dtype and layout
                out = _empty(x.shape)
                held = _stream(self._state, self._lanes, x, out)
            except (TypeError, AttributeError):
                held = -1
        else:
            held = -1
        if held < 0:
            x, out = self._prepare(x, out)
            held = _stream(self._state, self._lanes, x, out)
        self.held = held
        return out

    def _prepare(self, x, out):
        """Convert ``x`` for the kernel and check ``out``, or raise naming the problem."""
        if (
            not isinstance(x, np.ndarray)
            or x.dtype != _F64
            or not x.flags.c_contiguous
            or not x.flags.writeable
        ):
            x = as_signal(x)
            if x.ndim == 2 and x.shape[0] == self._nch:
                x = np.array(x, dtype=_F64, order="C")
        if x.ndim != 2:
            raise ValueError(f"chunk must be 2-D (n_channels, n_samples), got shape {np.shape(x)}.")
        if x.shape[0] != self._nch:
            raise ValueError(
                f"chunk has {x.shape[0]} channels but this filter was built for {self._nch} "
                f"(shape {x.shape}; expected ({self._nch}, n_samples))."
            )
        if out is None:
            return x, np.empty(x.shape)
        if not isinstance(out, np.ndarray) or out.dtype != _F64:
            raise TypeError("out must be a float64 ndarray.")
        if out.shape != x.shape or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(
                f"out must be a writeable C-contiguous array of shape {x.shape}, got "
                f"shape {out.shape}."
            )
        return x, out

    # -- state ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the past (zero state; ``init="steady"`` restarts at the next finite sample)."""
        self._z[:] = 0.0
        self._hold[:] = 0.0
        self._started[:] = 0.0 if self._init == "steady" else 1.0
        self._state[1] = 0.0
        self.held = 0

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return self._nch

    @property
    def n_sections(self) -> int:
        """Number of second-order sections per channel."""
        return self._ns

    @property
    def sos(self) -> np.ndarray:
        """Read-only coefficients, shape (n_channels, n_sections, 6)."""
        return self._sos

    @property
    def init(self) -> str:
        """Initialisation mode, ``"steady"`` or ``"zeros"``."""
        return self._init

    @property
    def zi(self) -> np.ndarray:
        """Copy of the current state in scipy's layout, shape (n_sections, n_channels, 2)."""
        z = self._z.reshape(2, self._ns, -1)[:, :, : self._nch]  # (2, ns, n_channels), a copy
        return z.transpose(1, 2, 0).copy()

    @property
    def started(self) -> np.ndarray:
        """Per channel: True once a finite sample has initialised the state."""
        return self._started != 0.0

    @property
    def n_restarts(self) -> int:
        """Channels restarted because their state overflowed, since the last reset."""
        return int(self._state[1])

    def __eq__(self, other):
        if not isinstance(other, SOSFilter):
            return NotImplemented
        return (
            self._nch == other._nch
            and self._init == other._init
            and np.array_equal(self._sos, other._sos)
        )

    __hash__ = None

    def __repr__(self) -> str:
        return (
            f"<SOSFilter | {self._ns} sections, {self._nch} channels, init={self._init!r}, "
            f"started {int(self.started.sum())}/{self._nch}>"
        )
