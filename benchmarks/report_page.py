"""The morning report in a real browser (issue 14, item 2): headless Chromium renders the page.

1. Records a seeded simulated night through the monitor (``dreamnet monitor --no-tui --speed
   max``, nightmare-prone sleeper, a lead-off, electrode pops, a saturation episode and mains
   interference) with its event stream, unless a recording is given.
2. Builds its morning report (:func:`staging.night.report.build_report`).
3. Opens the page in headless Chromium (Debian's ``chromium`` package: ``apt-get install -y
   chromium``), takes a full-page screenshot, and checks in the browser that every figure
   loaded (``img.complete`` and a natural size of at least 300 x 100 pixels) and that every
   section of the page is there.

Look at the screenshot yourself: it is what a physician opens in the morning.

Run from the repository root::

    .venv/bin/python benchmarks/report_page.py --out /tmp/report-page          # 5-h night
    .venv/bin/python benchmarks/report_page.py --out /tmp/rp --recording night.edf --events ev.jsonl

Exit code 0 when every check passed, 1 otherwise, 2 without Chromium.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from headset.lifeline import child_popen_kwargs  # noqa: E402

#: Sections the page must contain (their ``id``).
SECTIONS = (
    "glance",
    "recommendations",
    "nightmare-alerts",
    "interventions",
    "technician-notes",
    "signal-quality",
    "heart-rate",
    "figures",
    "not-measured",
    "sources",
)
#: Added to a copy of the page: after loading, the browser writes what it saw into the DOM.
_PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images].map(i => ({alt: i.alt, complete: i.complete,
                                               w: i.naturalWidth, h: i.naturalHeight}));
  const ids = [...document.querySelectorAll("section")].map(s => s.id);
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify({imgs, ids, height: document.body.scrollHeight});
  document.body.appendChild(pre);
});
</script>"""
_TIMEOUT_S = 120


def find_chromium() -> str | None:
    """Return the Chromium executable, or None when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def _run_browser(exe: str, args: list[str]) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-dev-shm-usage", "--mute-audio"]  # fmt: skip
    res = subprocess.run(
        [exe, *flags, *args], capture_output=True, text=True, timeout=_TIMEOUT_S,
        **child_popen_kwargs(),
    )  # fmt: skip
    if res.returncode != 0:
        raise RuntimeError(f"chromium failed ({res.returncode}): {res.stderr.strip()[-300:]}")
    return res.stdout


def check_page(html: Path, screenshot: Path, exe: str, width: int = 1200) -> dict:
    """Render ``html`` in headless Chromium, screenshot it, and report what loaded.

    Parameters
    ----------
    html : Path
        The report page.
    screenshot : Path
        PNG to write (the whole page, ``width`` pixels wide).
    exe : str
        The Chromium executable.
    width : int
        Window width, pixels.

    Returns
    -------
    dict
        ``imgs`` (per image: ``alt``, ``complete``, ``w``, ``h`` natural size in pixels),
        ``ids`` (section ids), ``height`` (page height, pixels), ``problems`` (list of str,
        empty when the page is whole).
    """
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(html.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"))
        dom = _run_browser(exe, ["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()])
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    if m is None:
        return {"imgs": [], "ids": [], "height": 0, "problems": ["the page did not load"]}
    seen = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    problems = [
        f"figure {i['alt']!r} did not load ({i['w']} x {i['h']} px)"
        for i in seen["imgs"]
        if not i["complete"] or i["w"] < 300 or i["h"] < 100
    ]
    problems += [f"section {s!r} missing" for s in SECTIONS if s not in seen["ids"]]
    if not seen["imgs"]:
        problems.append("no figure on the page")
    height = int(seen["height"]) + 40
    _run_browser(exe, [f"--window-size={width},{height}", f"--screenshot={screenshot}",
                       html.resolve().as_uri()])  # fmt: skip
    return {**seen, "problems": problems}


def record_night(out: Path, hours: float, seed: int) -> tuple[Path, Path]:
    """Record a monitored simulated night; return (recording, event stream)."""
    edf, events = out / "night.edf", out / "events.jsonl"
    main_ = "import sys; from staging.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", main_, "monitor", "--no-tui", "--speed", "max",
           "--duration", f"{hours:g}h", "--profile", "nightmare-prone", "--seed", str(seed),
           "--faults", "leadoff=1,pops=12,saturation=1,mains=8",
           "--record", str(edf), "--events", str(events), "--force"]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT, **child_popen_kwargs())
    return edf, events


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="directory for the night, report and screenshot")
    p.add_argument("--recording", help="report on this recording instead of recording a night")
    p.add_argument("--events", help="event stream of --recording")
    p.add_argument("--hours", type=float, default=5.0, help="length of the recorded night (h)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not 0.1 <= args.hours <= 12:
        p.error(f"--hours must be within 0.1-12, got {args.hours}")
    exe = find_chromium()
    if exe is None:
        print("chromium not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    from staging.night.report import build_report

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.recording:
        edf, events = Path(args.recording), args.events
    else:
        edf, events = record_night(out, args.hours, args.seed)
    res = build_report(edf, out / "report", events_path=events, age_years=35)
    shot = out / "report.png"
    seen = check_page(res.html, shot, exe)
    print("| page | figures loaded | sections | height (px) | screenshot |\n|---|---|---|---|---|")
    loaded = sum(i["complete"] and i["w"] >= 300 for i in seen["imgs"])
    print(f"| {res.html} | {loaded} of {len(seen['imgs'])} | {len(seen['ids'])} of "
          f"{len(SECTIONS)} | {seen['height']} | {shot} |")  # fmt: skip
    for problem in seen["problems"]:
        print(f"PROBLEM: {problem}")
    return 1 if seen["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
