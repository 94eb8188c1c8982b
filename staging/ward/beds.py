"""The beds of a ward: who sleeps where, on which source, and the ward's own faults.

A bed is a :class:`BedSpec`: a name, a monitor source (``synthetic``, ``drill``, ``FILE.edf``,
``tcp://HOST:PORT``, ``lsl:NAME``: anything ``dreamnet monitor --source`` takes), and for a
simulated sleeper its profile and seed. Beds come from ``--beds N`` (:func:`simulated_beds`:
mixed profiles, seeds derived from the ward's seed), from ``--bed NAME=SOURCE``
(:func:`parse_bed`) or from a TOML beds file (:func:`read_beds_file`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headset.errors import HeadsetError
from headset.faults import FaultConfig, parse_faults
from headset.sleeper import PROFILES

from ..errors import StagingError
from ..monitor.sources import parse_source
from . import MAX_BEDS

#: Most room-noise events a simulated night can hold (``--faults noise=K``).
MAX_NOISE_EVENTS = 20
#: Profiles of ``--beds N`` and their shares: a sleep lab's mix.
PROFILE_MIX: tuple[tuple[str, float], ...] = (
    ("healthy", 0.4),
    ("nightmare-prone", 0.3),
    ("insomnia", 0.15),
    ("child", 0.15),
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_BED_KEYS = frozenset({"name", "source", "profile", "seed", "key", "sleeper"})


@dataclass(frozen=True)
class BedSpec:
    """One bed of the ward.

    Attributes
    ----------
    name : str
        Name shown in the view and in every event (1-32 characters: letters, digits, ``_.-``).
    source : str
        A monitor source spec (``synthetic``, ``drill``, ``FILE.edf``, ``tcp://HOST:PORT``,
        ``lsl:NAME``).
    profile : str
        Sleeper profile of a simulated bed (``healthy``, ``nightmare-prone``, ``insomnia``,
        ``child``).
    seed : int
        Seed of a simulated bed's night.
    key : str or None
        Pairing key (hex or key file) of a TCP headset.
    sleeper : str or None
        The sleeper's JSON profile (personalised detection; created or updated at the end).
    """

    name: str
    source: str = "synthetic"
    profile: str = "healthy"
    seed: int = 0
    key: str | None = None
    sleeper: str | None = None

    def __post_init__(self):
        check_name(self.name)
        parse_source(self.source)  # malformed spec, missing file: StagingError, HeadsetError
        if self.profile not in PROFILES:
            known = ", ".join(PROFILES)
            raise StagingError(f"bed {self.name}: unknown profile {self.profile!r} ({known})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise StagingError(
                f"bed {self.name}: seed must be a non-negative int, got {self.seed!r}"
            )

    @property
    def simulated(self) -> bool:
        """True for a bed on the embedded simulated headset (room noise reaches its sleeper)."""
        return self.source in ("synthetic", "drill")


def check_name(name) -> str:
    """Return ``name`` if it is a valid bed name, else raise StagingError saying why."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise StagingError(
            f"bad bed name {name!r}: 1-32 characters, letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_count(n: int, what: str = "--beds") -> int:
    """Return ``n`` if it is a bed count the ward accepts (1 to :data:`MAX_BEDS`)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_BEDS:
        raise StagingError(f"{what}: a ward holds 1 to {MAX_BEDS} beds, got {n!r}")
    return int(n)


def simulated_beds(n: int, seed: int) -> list[BedSpec]:
    """Return ``n`` simulated beds with mixed profiles and seeds derived from ``seed``.

    Bed ``i`` draws its profile (shares of :data:`PROFILE_MIX`) and its night's seed from
    ``SeedSequence([seed, i])``, so adding a bed never changes the others.

    Parameters
    ----------
    n : int
        Number of beds, 1 to :data:`MAX_BEDS`.
    seed : int
        The ward's seed (non-negative).

    Returns
    -------
    list of BedSpec
        Beds named ``bed01``, ``bed02``...
    """
    n = check_count(n)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise StagingError(f"--seed must be a non-negative int, got {seed!r}")
    names = [p for p, _ in PROFILE_MIX]
    shares = np.array([w for _, w in PROFILE_MIX])
    width = max(2, len(str(n)))
    beds = []
    for i in range(n):
        ss = np.random.SeedSequence([seed, i])
        rng = np.random.default_rng(ss)
        profile = names[int(rng.choice(len(names), p=shares / shares.sum()))]
        bed_seed = int(ss.generate_state(1)[0] % (2**31))
        beds.append(BedSpec(f"bed{i + 1:0{width}d}", "synthetic", profile, bed_seed))
    return beds


def parse_bed(text: str, seed: int = 0, index: int = 0) -> BedSpec:
    """Parse a ``--bed NAME=SOURCE`` value.

    Parameters
    ----------
    text : str
        ``NAME=SOURCE``, e.g. ``lab3=tcp://10.0.0.3:7000`` or ``rerun=night.edf``; a simulated
        bed may name its profile: ``kid=synthetic:child``.
    seed : int
        The ward's seed (a simulated bed's night seed is derived from it and ``index``).
    index : int
        Position of the bed in the ward.

    Returns
    -------
    BedSpec
        The bed.
    """
    name, sep, source = str(text).partition("=")
    if not sep or not name.strip() or not source.strip():
        raise StagingError(f"--bed {text!r}: expected NAME=SOURCE, e.g. lab3=tcp://127.0.0.1:7000")
    source = source.strip()
    profile = "healthy"
    if source.startswith("synthetic:"):
        source, _, profile = source.partition(":")
    bed_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0] % (2**31))
    return BedSpec(name.strip(), source, profile, bed_seed)


def read_beds_file(path, seed: int = 0) -> list[BedSpec]:
    """Read a TOML beds file: one ``[[bed]]`` table per bed.

    Each table has ``name`` and optionally ``source`` (default ``synthetic``), ``profile``,
    ``seed`` (default derived from the ward's seed), ``key`` (pairing key of a TCP headset) and
    ``sleeper`` (the sleeper's JSON profile). Relative paths are taken from the file's folder.

    Parameters
    ----------
    path : str or path-like
        The file.
    seed : int
        The ward's seed.

    Returns
    -------
    list of BedSpec
        The beds, in file order.

    Raises
    ------
    HeadsetError
        The file is missing or unreadable.
    StagingError
        Not TOML, no beds, an unknown key, a bad value, or too many beds.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise HeadsetError(f"--beds-file {path}: no such file") from None
    except OSError as exc:
        raise HeadsetError(f"--beds-file {path}: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StagingError(f"--beds-file {path}: not a TOML file ({exc})") from None
    tables = doc.get("bed")
    if not isinstance(tables, list) or not tables:
        raise StagingError(f"--beds-file {path}: expected [[bed]] tables, found none")
    check_count(len(tables), f"--beds-file {path}")
    beds = []
    for i, t in enumerate(tables):
        if not isinstance(t, dict):
            raise StagingError(f"--beds-file {path}: bed {i + 1} is not a table")
        unknown = set(t) - _BED_KEYS
        if unknown:
            raise StagingError(
                f"--beds-file {path}: bed {i + 1} has unknown key(s) {', '.join(sorted(unknown))}"
                f" (known: {', '.join(sorted(_BED_KEYS))})"
            )
        if "name" not in t:
            raise StagingError(f"--beds-file {path}: bed {i + 1} has no name")
        source = str(t.get("source", "synthetic"))
        if not source.startswith(("synthetic", "drill", "tcp:", "lsl:")):
            source = _relative(p, source)
        default_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0] % (2**31))
        key = t.get("key")
        sleeper = t.get("sleeper")
        beds.append(
            BedSpec(
                name=t["name"],
                source=source,
                profile=str(t.get("profile", "healthy")),
                seed=t.get("seed", default_seed),
                key=None if key is None else _relative(p, str(key)),
                sleeper=None if sleeper is None else _relative(p, str(sleeper)),
            )
        )
    return beds


def _relative(beds_file: Path, value: str) -> str:
    """Return a path of the beds file taken from its folder (a hex key stays as it is)."""
    if re.fullmatch(r"[0-9a-fA-F]{32,}", value) or Path(value).is_absolute():
        return value
    return str(beds_file.parent / value)


def check_beds(beds: list[BedSpec]) -> list[BedSpec]:
    """Check the whole ward: 1 to :data:`MAX_BEDS` beds with distinct names."""
    check_count(len(beds), "the ward")
    seen: set[str] = set()
    for b in beds:
        if b.name in seen:
            raise StagingError(f"bed name {b.name!r} is used twice")
        seen.add(b.name)
    return beds


def split_faults(spec: str | None) -> tuple[int, FaultConfig]:
    """Split a ward's ``--faults`` into the room noise and the faults of every simulated bed.

    Parameters
    ----------
    spec : str or None
        ``noise=K`` (K room-noise events in the night, 0 to :data:`MAX_NOISE_EVENTS`) and any
        fault of ``dreamnet simulate --faults`` (applied to each simulated bed).

    Returns
    -------
    n_noise : int
        Room-noise events.
    faults : FaultConfig
        The per-bed faults.
    """
    n_noise = 0
    rest = []
    for part in (spec or "").split(","):
        name, _, value = part.partition("=")
        if name.strip() != "noise":
            rest.append(part)
            continue
        try:
            k = float(value)
        except ValueError:
            raise HeadsetError(f"fault 'noise' needs a number, got {value.strip()!r}") from None
        if not (k == int(k) and 0 <= k <= MAX_NOISE_EVENTS):
            raise HeadsetError(
                f"fault 'noise' must be a whole number of room-noise events within "
                f"0-{MAX_NOISE_EVENTS}, got {value.strip()!r}"
            )
        n_noise = int(k)
    return n_noise, parse_faults(",".join(rest))
