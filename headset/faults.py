"""Simulated faults and artifacts, switched on by a ``--faults`` spec (DESIGN section 4).

A spec is a comma-separated list of ``name=value`` pairs, e.g.
``loss=0.01,corrupt=0.001,disconnect=3,leadoff=1``. Every fault is off (zero) by default and
every random draw comes from the session seed, so the same seed and spec give the same night.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .errors import HeadsetError

#: name -> (help text, smallest, largest value) for every fault; ``--help`` of the CLI prints
#: this table. The ranges bound what a spec can ask for: counts and rates stay small enough that
#: no value can make a night allocate without bound.
FAULT_HELP: dict[str, tuple[str, float, float]] = {
    "mains": ("mains interference amplitude on every exG channel, microvolts", 0, 10000),
    "mains_freq": ("mains frequency, Hz: 50 or 60 (default 50)", 50, 60),
    "movement": ("movement artifacts (large swings, EMG burst), events per hour", 0, 120),
    "pops": ("electrode pops (step + exponential decay on one channel), per hour", 0, 360),
    "leadoff": ("lead-off episodes (one electrode flat or railed 30-300 s), per night", 0, 100),
    "saturation": ("ADC saturation episodes (beyond +-187.5 mV), count per night", 0, 100),
    "drift": ("sweat drift (slow baseline wander), peak microvolts", 0, 10000),
    "loss": ("packet loss, probability per packet", 0, 1),
    "corrupt": ("packet corruption (flipped bytes), probability per packet", 0, 1),
    "duplicate": ("duplicated packets, probability per packet", 0, 1),
    "reorder": ("swapped neighbouring packets, probability per packet", 0, 1),
    "disconnect": ("dropped connections (2-20 s each), count per night", 0, 100),
    "clockdrift": ("device clock error against the host, parts per million", 0, 1000),
}


@dataclass(frozen=True)
class FaultConfig:
    """Which faults to simulate, and how strongly (see ``FAULT_HELP`` for units and ranges).

    Every value is checked against its range of :data:`FAULT_HELP` when the configuration is
    made (so also when a ``--faults`` spec is parsed); 0 switches a fault off.
    """

    mains: float = 0.0
    mains_freq: float = 50.0
    movement: float = 0.0
    pops: float = 0.0
    leadoff: float = 0.0
    saturation: float = 0.0
    drift: float = 0.0
    loss: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    disconnect: float = 0.0
    clockdrift: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            text, lo, hi = FAULT_HELP[f.name]
            if not lo <= v <= hi:  # also NaN
                kind = "a non-negative number " if lo == 0 else ""
                raise HeadsetError(
                    f"fault {f.name!r} must be {kind}within {lo:g}-{hi:g}, got {v!r} ({text})"
                )
        if self.mains_freq not in (50.0, 60.0):
            raise HeadsetError(f"fault 'mains_freq' must be 50 or 60 Hz, got {self.mains_freq}")

    @property
    def any_packet_fault(self) -> bool:
        """True if a fault of the packet/transport layer is on."""
        return any(
            getattr(self, n) > 0
            for n in ("loss", "corrupt", "duplicate", "reorder", "disconnect", "clockdrift")
        )


def parse_faults(spec: str | None) -> FaultConfig:
    """Parse a ``--faults`` spec such as ``"loss=0.01,corrupt=0.001,disconnect=3"``.

    Parameters
    ----------
    spec : str or None
        Comma-separated ``name=value`` pairs; None or ``""`` means no faults.

    Returns
    -------
    FaultConfig
        The configuration.

    Raises
    ------
    HeadsetError
        For an unknown fault name, a missing ``=``, a value that is not a number, or a value
        outside the fault's range (:data:`FAULT_HELP`); the message names the fault, the value
        and the range.
    """
    if spec is None or not spec.strip():
        return FaultConfig()
    values: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise HeadsetError(f"fault {part!r} needs a value, e.g. {part}=1")
        name, _, raw = part.partition("=")
        name = name.strip()
        if name not in FAULT_HELP:
            known = ", ".join(FAULT_HELP)
            raise HeadsetError(f"unknown fault {name!r}; known faults: {known}")
        try:
            values[name] = float(raw)
        except ValueError:
            raise HeadsetError(f"fault {name!r} needs a number, got {raw.strip()!r}") from None
    return FaultConfig(**values)


def faults_help() -> str:
    """Return the table of faults, with their ranges, for ``--help`` texts."""
    return "\n".join(
        f"  {name:<11} {text} ({lo:g}-{hi:g})" for name, (text, lo, hi) in FAULT_HELP.items()
    )
