"""Drive the ward's live view in a pseudo-terminal: select a bed, veto its cue, open it, quit."""

from __future__ import annotations

import io
import time

import pexpect
import pytest
from _tty import Screen
from rich.console import Console

from staging.monitor.events import read_events
from staging.ward.app import WardOptions, build_ward
from staging.ward.view import WardView, ordered, parse_keys


def test_keys_are_decoded():
    assert parse_keys("\x1b[A\x1b[Bjk\rvyaq\x1bb") == [
        "up", "down", "down", "up", "open", "veto", "approve", "ack", "quit", "back", "back",
    ]  # fmt: skip


def test_sixteen_beds_fit_160x48_and_degrade_when_smaller():
    ward = build_ward(WardOptions(n_beds=16, seed=3, speed=None, duration_s=600.0, tui=False,
                                 workers=0))  # fmt: skip
    ward.want_rows = True
    try:
        for _ in range(13):
            ward.step(5.0)
        ward.rows["bed07"]["alerts"] = ["NIGHTMARE risk 0.90"]  # a bed that needs a person
        view = WardView(ward, 60.0)
        assert ordered(ward)[0] == "bed07"

        def screen(h, w):
            c = Console(file=io.StringIO(), width=w, height=h, record=True, force_terminal=True)
            c.print(view.render(h, w))
            return c.export_text().splitlines()

        big = screen(48, 160)
        assert len(big) <= 48 and max(len(x) for x in big) <= 160
        assert all(any(f"bed{i:02d}" in x for x in big) for i in range(1, 17))
        assert "more beds" not in "\n".join(big)
        small = "\n".join(screen(20, 90))
        assert "bed07" in small and "more beds (" not in small and "+" in small
        view.selected = "bed16"  # the selected bed stays on screen
        assert "bed16" in "\n".join(screen(20, 90))
    finally:
        ward.finish("quit")


@pytest.mark.slow
def test_technician_selects_vetoes_opens_and_quits(tmp_path):
    ev = tmp_path / "ward.jsonl"
    s = Screen("ward", ["--beds", "2", "--bed", "dr=drill", "--speed", "60", "--duration", "20m",
                "--events", str(ev), "--workers", "2"], tmp_path, rows=48, cols=160,
               header="dreamnet ward ", forget_on_match=True, wait_s=120.0)  # fmt: skip
    try:
        s.wait_for(r"dreamnet ward .*3 beds")
        s.wait_for(r"PENDING \w+ [\d.]+: sends in \d+ s")  # the drill's nightmare: a cue
        s.child.send("k")  # bed01 was selected; the pending bed is on top
        time.sleep(0.5)
        s.child.send("v")
        s.wait_for(r"VETOED \(dr\)")
        s.child.send("\r")
        s.wait_for(r"ward > dr .*\n.*dreamnet monitor")
        s.child.send("\x1b")
        time.sleep(0.3)
        s.wait_for(r"dreamnet ward ")
        s.child.send("q")
        s.child.expect(pexpect.EOF, timeout=60)
        s.child.close()
        assert s.child.exitstatus == 0
    finally:
        s.close()
    events = read_events(ev)
    vetoes = [e for e in events if e["type"] == "veto"]
    assert [e["bed"] for e in vetoes] == ["dr"]
    sent_after = [e for e in events if e["bed"] == "dr" and e["type"] == "intervention"
                  and e["status"] == "sent" and e["t"] <= vetoes[0]["t"] + 10]  # fmt: skip
    assert not [e for e in sent_after if e["t"] >= vetoes[0]["t"]]
    assert events[-1]["type"] == "ward_end" and events[-1]["reason"] == "quit"
