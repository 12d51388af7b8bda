"""The kernel's RSS counters read back for this process."""

from __future__ import annotations

import mmap

import pytest

from fathom.experiments.process_memory import reset_peak_rss, status_kib


def test_peak_is_at_least_the_current_rss_and_grows_with_an_allocation() -> None:
    reset_peak_rss()
    rss, peak = status_kib("VmRSS"), status_kib("VmHWM")
    assert 0 < rss <= peak
    # fresh pages from the kernel, touched: 64 MiB resident (a bytearray may reuse memory
    # the allocator already holds resident from earlier tests, and then RSS does not grow)
    block = mmap.mmap(-1, 64 * 2**20)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    assert status_kib("VmHWM") >= rss + 60 * 1024
    block.close()


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="NoSuchField"):
        status_kib("NoSuchField")
