"""One event schema (staging/events.py): what the detectors' objects say."""

from __future__ import annotations

import json

import pytest

from staging.closedloop.arousal import ArousalEvent
from staging.closedloop.nightmare import NightmareAlert
from staging.events import (
    ANNOTATIONS,
    ArousalRecord,
    NightmareAlertRecord,
    arousal_record,
    nightmare_alert_record,
    to_event,
)

AROUSAL_KEYS = list(ArousalRecord.__annotations__)
ALERT_KEYS = list(NightmareAlertRecord.__annotations__)
HR = {"value": 80.0, "baseline": 60.0, "unit": "bpm", "evidence": 3.0, "weight": 0.7}


def test_detector_objects_give_the_schema():
    ev = ArousalEvent(100.0, 104.5, 2, 8.25, "alpha", 1.5)
    rec = arousal_record(ev)
    assert list(rec) == AROUSAL_KEYS
    assert rec == {"stage": "N2", "onset": 100.0, "duration": 4.5,
                   "annotation": "Detected arousal", "band": "alpha", "shift_db": 8.25}  # fmt: skip
    out = ev.to_event()
    assert list(out) == ["t", "type", *AROUSAL_KEYS] and out["t"] == 100.0
    assert ev.to_annotation().description == rec["annotation"] == ANNOTATIONS["arousal"]
    al = NightmareAlert(300.0, 0.8, 4, {"heart_rate": HR}, ("respiration: none",), 280.0)
    rec = nightmare_alert_record(al)
    assert list(rec) == ALERT_KEYS
    assert rec["stage"] == "R" and rec["onset"] == 300.0 and rec["duration"] == 0.0
    assert rec["summary"] == al.summary() and rec["missing"] == ["respiration: none"]
    out = al.to_event()
    assert list(out) == ["t", "type", *ALERT_KEYS] and out["type"] == "nightmare_alert"
    json.dumps(out, allow_nan=False)
    assert al.to_annotation().description == ANNOTATIONS["nightmare_alert"]
    with pytest.raises(ValueError, match="event type must be one of"):
        to_event(0.0, "spindle", rec)
