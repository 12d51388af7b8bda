"""Test-session settings: one torch thread.

The tests run tiny graphs, where thread start-up and contention cost more than they save
(the DGI tests take 4-11 s each with 2 threads on a busy 2-core machine, 0.1-0.3 s with 1).
"""

import torch

torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """Skip the ``gpu`` tests, with the reason shown, where torch sees no CUDA device."""
    import pytest

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
