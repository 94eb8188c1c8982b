"""Scalp topography of the simulated EEG: electrode sites, derivations and spatial fields.

Every EEG channel is a derivation ``"EEG A-B"``: the potential at site A minus the one at site
B (``"EEG C4-M1"``: central against the left mastoid, ``"EEG Fpz-Cz"``: frontopolar against the
vertex). The generators work on sites: a signal component (aperiodic background, alpha, a
spindle...) has a gain per site, and a derivation sees the difference of its two sites' values.
So a derivation between two nearby active sites (``Pz-Oz``, ``Fpz-Cz``) is smaller than one
against the nearly inactive mastoid, and a component that is equal at both sites cancels.

The ongoing (noise-like) components are spatially smooth random fields: the correlation between
two sites falls with their distance as ``exp(-d / length)`` (volume conduction; the length is
component-specific). They are drawn in derivation space as a truncated Karhunen-Loève expansion
(:func:`field_modes`), which keeps only as many independent streams as the derivations need.

Where each thing is strong (AASM manual; Rechtschaffen & Kales; De Gennaro & Ferrara 2003 for
spindles; Massimini et al. 2004 for slow waves; Plöchl et al. 2012 for ocular artifacts):
alpha is occipital-parietal; fast spindles centro-parietal and slow spindles frontal; slow waves
and K-complexes frontal; vertex sharp waves and sawtooth waves at the vertex; scalp-muscle
activity at the forehead (frontalis) and near the mastoids (temporalis and neck); the eyes'
dipole reaches the frontopolar sites most (blinks, vertical movements) and the lateral sites with
opposite signs (horizontal movements).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Electrode sites (10-20 system, mastoids M1/M2).
SITES: tuple[str, ...] = (
    "Fpz",
    "Fz",
    "F3",
    "F4",
    "Cz",
    "C3",
    "C4",
    "Pz",
    "Oz",
    "O1",
    "O2",
    "M1",
    "M2",
)
_I = {s: i for i, s in enumerate(SITES)}

#: Site positions on a flattened head, cm (x to the right, y forward; Cz at the origin).
POSITION = np.array(
    [
        [0.0, 9.5],  # Fpz
        [0.0, 5.0],  # Fz
        [-4.5, 5.2],  # F3
        [4.5, 5.2],  # F4
        [0.0, 0.0],  # Cz
        [-6.0, 0.0],  # C3
        [6.0, 0.0],  # C4
        [0.0, -5.0],  # Pz
        [0.0, -9.5],  # Oz
        [-3.0, -9.0],  # O1
        [3.0, -9.0],  # O2
        [-8.5, -5.5],  # M1
        [8.5, -5.5],  # M2
    ]
)


def site_vector(**gains: float) -> np.ndarray:
    """Per-site gains from keywords; ``F``, ``C``, ``O`` and ``M`` set both hemispheres.

    Parameters
    ----------
    **gains : float
        Site name (``Fpz=0.5``) or a pair's letter (``F=0.9`` sets F3 and F4).

    Returns
    -------
    ndarray, shape (len(SITES),)
        The gains (0 for sites not named).
    """
    v = np.zeros(len(SITES))
    for key, g in gains.items():
        names = [key] if key in _I else [s for s in SITES if s[:-1] == key and s[-1] != "z"]
        if not names:
            raise ValueError(f"unknown site {key!r}; sites are {', '.join(SITES)}.")
        for s in names:
            v[_I[s]] = g
    return v


def derivation_sites(name: str) -> tuple[str, str]:
    """Return the two sites of a derivation name ``"EEG A-B"``.

    Parameters
    ----------
    name : str
        Channel name, e.g. ``"EEG Fpz-Cz"``.

    Returns
    -------
    tuple of str
        The active site and the reference site.
    """
    parts = name.removeprefix("EEG ").split("-")
    if len(parts) != 2 or parts[0] not in _I or parts[1] not in _I:
        raise ValueError(f"{name!r} is not an 'EEG A-B' derivation of sites {', '.join(SITES)}.")
    return parts[0], parts[1]


def difference_matrix(names: Sequence[str]) -> np.ndarray:
    """Matrix that turns site potentials into derivations.

    Parameters
    ----------
    names : sequence of str
        Derivation names ``"EEG A-B"``.

    Returns
    -------
    ndarray, shape (len(names), len(SITES))
        +1 at the active site and -1 at the reference of each derivation.
    """
    d = np.zeros((len(names), len(SITES)))
    for k, name in enumerate(names):
        a, b = derivation_sites(name)
        d[k, _I[a]] += 1.0
        d[k, _I[b]] -= 1.0
    return d


def field_modes(diff: np.ndarray, gain: np.ndarray, length: float, keep: float = 0.99):
    """Spatial modes of a smooth random field as seen by a set of derivations.

    The field has per-site standard deviation ``gain`` and correlation ``exp(-d / length)``
    between sites ``d`` cm apart. Its covariance in derivation space, ``D G R G D^T``, is
    factored by eigen-decomposition; modes are kept (largest first) until every derivation has
    at least the fraction ``keep`` of its variance.

    Parameters
    ----------
    diff : ndarray, shape (n_derivations, n_sites)
        From :func:`difference_matrix`.
    gain : ndarray, shape (n_sites,)
        Standard deviation of the field at each site (relative units).
    length : float
        Correlation length, cm.
    keep : float
        Fraction of each derivation's variance the kept modes must carry.

    Returns
    -------
    ndarray, shape (n_derivations, n_modes)
        Loadings: derivations = loadings @ (independent unit-variance streams).
    """
    d = np.linalg.norm(POSITION[:, None, :] - POSITION[None, :, :], axis=-1)
    cov = np.exp(-d / length) * np.outer(gain, gain)
    c = diff @ cov @ diff.T
    w, v = np.linalg.eigh(c)
    order = np.argsort(w)[::-1]
    w, v = np.clip(w[order], 0.0, None), v[:, order]
    load = v * np.sqrt(w)
    total = np.maximum(np.diag(c), 1e-12)
    captured = np.cumsum(load**2, axis=1) / total[:, None]
    k = int(np.argmax(np.all(captured >= keep, axis=0))) + 1
    return load[:, :k]
