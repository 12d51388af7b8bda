"""Fixtures of the ``fathom`` command's tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

OneLineError = Callable[..., str]


@pytest.fixture
def one_line_error(capsys: pytest.CaptureFixture[str]) -> OneLineError:
    """``check(*words)``: what the command wrote is one line on stderr (no traceback,
    starting ``fathom``) holding every word, and nothing on stdout; returns the line."""

    def check(*words: str) -> str:
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert len(err.splitlines()) == 1, err
        assert "Traceback" not in err
        assert err.startswith("fathom"), err
        for word in words:
            assert word in err, err
        assert captured.out == "", captured.out
        return err

    return check
