"""The report's page: the summary of :func:`staging.night.report.build_report` rendered as HTML.

The layout is the jinja2 template ``templates/report.html`` (autoescaped); this module turns
the summary into what a physician reads: clock times, numbers with units, the nightmare
detector's evidence in words, and each figure embedded as a base64 PNG with its title and
caption, so the page is one self-contained file.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

_TEMPLATES = Path(__file__).parent / "templates"

#: Nightmare-detector markers in words: (what was measured, unit, decimals).
MARKER_WORDS = {
    "heart_rate": ("heart rate", "beats/min", 0),
    "emg_tone": ("chin muscle tone (EMG RMS, 20-100 Hz)", "µV", 1),
    "emg_twitches": ("chin muscle twitches", "per min", 1),
    "eeg_alpha_beta": ("EEG alpha and beta power", "dB", 1),
    "eye_movements": ("rapid eye movements", "per min", 0),
}
_STAGE_WORDS = {"W": "wake", "N1": "N1", "N2": "N2", "N3": "N3", "R": "REM", "?": "unscored"}


def fmt(v, unit: str = "", nd: int = 1) -> str:
    """Return a number with its unit, or an en dash when it is missing or not finite."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}{' ' + unit if unit else ''}"
    return f"{v}{' ' + unit if unit else ''}"


def evidence_words(evidence: dict, top: int = 3) -> str:
    """Describe the markers that raised a nightmare alert, strongest first, with units.

    Parameters
    ----------
    evidence : dict
        Per marker (``heart_rate``, ``emg_tone``, ...): ``value``, ``baseline``, ``evidence``
        (0 = baseline, 1 = clearly raised), ``weight``.
    top : int
        Markers described at most.

    Returns
    -------
    str
        E.g. ``"heart rate 80 beats/min (calm-REM baseline 62 beats/min)"``; "not recorded"
        without evidence.
    """
    ranked = sorted(
        evidence.items(),
        key=lambda kv: -((kv[1].get("evidence") or 0) * (kv[1].get("weight") or 1)),
    )
    parts = []
    for marker, v in ranked[:top]:
        label, unit, nd = MARKER_WORDS.get(marker, (marker.replace("_", " "), "", 1))
        unit = v.get("unit", unit).replace("uV", "µV") if marker not in MARKER_WORDS else unit
        value, base = v.get("value"), v.get("baseline")
        if unit == "dB" and value is not None and base is not None:
            parts.append(f"{label} {value - base:+.{nd}f} dB against the calm-REM baseline")
        else:
            parts.append(
                f"{label} {fmt(value, unit, nd)} (calm-REM baseline {fmt(base, unit, nd)})"
            )
    return "; ".join(parts) or "not recorded"


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _glance(s: dict) -> list[tuple[str, str]]:
    st = s["stats"]
    ar = st["n_arousals"]
    return [
        ("Time in bed (lights off to lights on)", fmt(st["tib_min"], "min")),
        ("Total sleep time", fmt(st["tst_min"], "min")),
        ("Sleep efficiency", fmt(st["se_pct"], "%")),
        ("Sleep-onset latency (from lights off)", fmt(st["sol_min"], "min")),
        ("REM latency (from sleep onset)", fmt(st["rem_latency_min"], "min")),
        ("Wake after sleep onset", fmt(st["waso_min"], "min")),
        ("Awakenings (wake bouts after sleep onset)", fmt(st["n_awakenings"])),
        ("Stage shifts (changes between scored epochs)", fmt(st["stage_shifts"])),
        ("Arousals in sleep", "–" if ar is None else f"{ar} ({fmt(st['arousal_index'], '/h')})"),
        ("Nightmare alerts of the detector", fmt(st["n_nightmare_alerts"])),
    ]


def _stage_rows(st: dict) -> list[tuple[str, str, str, str]]:
    lat = st.get("stage_latency_min", {})
    return [
        (
            _STAGE_WORDS[k],
            fmt(st["stage_min"][k], "min"),
            fmt(st["stage_pct_tst"].get(k), "%") if k != "W" else "",
            fmt(lat.get(k), "min") if k != "W" else "",
        )
        for k in ("W", "N1", "N2", "N3", "R")
    ]


def render(summary: dict, figures: dict, clock) -> str:
    """Return the report page.

    Parameters
    ----------
    summary : dict
        The content of ``report.json``.
    figures : dict of str to staging.night.report_figures.Figure
        The figures to embed.
    clock : staging.night.report_figures.ClockAxis
        Turns seconds since the recording start into clock times.

    Returns
    -------
    str
        The HTML page.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["clock"] = lambda t: clock.label(float(t), seconds=True)
    env.filters["stage"] = lambda k: _STAGE_WORDS.get(k, k)
    env.filters["evidence"] = evidence_words
    s = summary
    alerts = s["nightmares"]["alerts"]
    return env.get_template("report.html").render(
        s=s,
        glance=_glance(s),
        stage_rows=_stage_rows(s["stats"]),
        woke=sum(a["outcome"] == "awakening" for a in alerts),
        figures=[(f.title, f.caption, _img(f.path)) for f in figures.values()],
        start=clock.label(0.0, seconds=True) if clock.start else None,
        date=f"{clock.start:%d %b %Y}" if clock.start else None,
        end=clock.label(s["duration_s"], seconds=True),
    )
