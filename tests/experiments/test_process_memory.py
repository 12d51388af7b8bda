"""The kernel's RSS counters read back for this process."""

from __future__ import annotations

import pytest

from fathom.experiments.process_memory import reset_peak_rss, status_kib


def test_peak_is_at_least_the_current_rss_and_grows_with_an_allocation() -> None:
    reset_peak_rss()
    rss, peak = status_kib("VmRSS"), status_kib("VmHWM")
    assert 0 < rss <= peak
    block = bytearray(64 * 2**20)  # touched: 64 MiB resident
    block[::4096] = b"x" * len(block[::4096])
    assert status_kib("VmHWM") >= rss + 60 * 1024
    del block


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="NoSuchField"):
        status_kib("NoSuchField")
