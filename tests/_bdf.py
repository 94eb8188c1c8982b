"""Write a 24-bit BDF file by hand (no library writes BDF): header fields and records."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Digital range of the written signals (24-bit, symmetric).
DIGITAL = 8_388_607
#: Physical range, microvolts.
PHYSICAL_UV = 5000.0


def write_bdf(path, data_uv: np.ndarray, sfreq: int, labels, record_s: int = 1) -> Path:
    """Write ``data_uv`` (n_channels, n_samples, µV) as a plain 24-bit BDF file.

    ``n_samples`` must be a whole number of ``record_s``-second records.
    """
    n_ch, n = data_uv.shape
    spr = int(sfreq * record_s)
    n_rec = n // spr
    assert n_rec * spr == n, "whole records only"

    def field(value, width):
        return str(value).ljust(width)[:width].encode("latin-1")

    head = b"\xffBIOSEMI" + field("X X X X", 80) + field("Startdate X X X X", 80)
    head += field("01.03.24", 8) + field("22.00.00", 8) + field(256 * (n_ch + 1), 8)
    head += field("24BIT", 44) + field(n_rec, 8) + field(record_s, 8) + field(n_ch, 4)
    columns = [
        [field(lab, 16) for lab in labels],
        [field("AgAgCl electrode", 80)] * n_ch,
        [field("uV", 8)] * n_ch,
        [field(-PHYSICAL_UV, 8)] * n_ch,
        [field(PHYSICAL_UV, 8)] * n_ch,
        [field(-DIGITAL, 8)] * n_ch,
        [field(DIGITAL, 8)] * n_ch,
        [field("HP:0.1Hz LP:100Hz", 80)] * n_ch,
        [field(spr, 8)] * n_ch,
        [field("", 32)] * n_ch,
    ]
    for col in columns:
        head += b"".join(col)
    dig = np.clip(np.round(data_uv * DIGITAL / PHYSICAL_UV), -DIGITAL, DIGITAL).astype("<i4")
    # records: (n_rec, n_ch, spr) samples of 3 little-endian bytes
    rec = dig.reshape(n_ch, n_rec, spr).transpose(1, 0, 2)
    raw = rec.astype("<i4").view(np.uint8).reshape(n_rec, n_ch, spr, 4)[..., :3]
    path = Path(path)
    path.write_bytes(head + np.ascontiguousarray(raw).tobytes())
    return path
