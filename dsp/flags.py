"""Per-sample flag bits of a stream (``Chunk.flags``, DESIGN 3): the one definition.

Every source sets them (driver, replay, transport, simulator) and every consumer tests them
(:mod:`dsp.ecg`, :mod:`dsp.quality`, the detectors). ``dsp`` is the lowest layer, so the bits
live here and :mod:`headset.chunk` re-exports them.

=================  =====  ==========================================================
name               bit    meaning
=================  =====  ==========================================================
``FLAG_GAP``       1      sample was not received; its value is filled (last good value)
``FLAG_LEAD_OFF``  2      electrode reported off
``FLAG_SATURATED`` 4      ADC at the rail
``FLAG_CORRUPT``   8      value not trustworthy (NaN in a file, ...)
=================  =====  ==========================================================

``BAD_FLAGS`` is their union: a sample carrying any of them holds no usable signal.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BAD_FLAGS", "FLAG_CORRUPT", "FLAG_GAP", "FLAG_LEAD_OFF", "FLAG_SATURATED"]

FLAG_GAP = np.uint8(1)
FLAG_LEAD_OFF = np.uint8(2)
FLAG_SATURATED = np.uint8(4)
FLAG_CORRUPT = np.uint8(8)
BAD_FLAGS = np.uint8(FLAG_GAP | FLAG_LEAD_OFF | FLAG_SATURATED | FLAG_CORRUPT)
