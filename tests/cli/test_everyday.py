"""``fathom`` in logs, scripts and pipes: fast --help/--version, progress lines when stderr is
not a terminal, --quiet/--verbose, and output paths refused before any work."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fathom.cli import main
from fathom.cli.commands import COMMANDS
from fathom.cli.parser import build_parser
from fathom.report.console import PlainProgress
from hostile import assert_refused, snapshot

TINY = ["--epochs", "3", "--threads", "1", "data.synthetic.num_nodes=60"]
PROGRESS = re.compile(r": \d+/\d+ \(\d+%\) elapsed \d+:\d\d")


def _subcommands(parser: object) -> list[str]:
    action = next(a for a in parser._actions if a.dest == "command")  # type: ignore[attr-defined]
    return list(action.choices)


def test_top_level_parser_lists_exactly_the_commands_of_the_full_parser() -> None:
    assert _subcommands(build_parser(commands_only=True)) == list(COMMANDS)
    assert _subcommands(build_parser()) == list(COMMANDS)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["-q", "--help"], []])
def test_help_and_version_answer_without_importing_torch(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from fathom.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH", out.stdout + out.stderr
    assert time.perf_counter() - t0 < 30  # generous: the point is no torch import
    if argv == ["--version"]:
        assert re.fullmatch(r"fathom \d+\.\d+\.\d+.*", out.stdout.strip().splitlines()[0])
    if argv == ["--help"]:
        for name in COMMANDS:
            assert name in out.stdout


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", *TINY, "--seeds", "2"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if PROGRESS.search(line)]
    assert lines, err
    assert lines[-1].endswith("elapsed 0:00") or "6/6 (100%)" in lines[-1], lines


def test_plain_progress_reports_at_a_steady_interval_during_a_long_step() -> None:
    stream = io.StringIO()
    with PlainProgress(0.05, stream) as progress:
        task = progress.add_task("runs", total=4)
        progress.update(task, advance=1, description="run 1 of 4")
        time.sleep(0.4)  # one long step: the timer keeps reporting
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3, lines
    assert all(line.startswith("run 1 of 4: 1/4 (25%) elapsed") for line in lines)
    assert "eta" in lines[0]


def test_plain_progress_shows_a_total_of_zero_without_a_percentage() -> None:
    """A sweep with nothing left to run sets its total to 0: a count, no division by it."""
    stream = io.StringIO()
    with PlainProgress(0.0, stream) as progress:
        task = progress.add_task("runs", total=None)
        progress.update(task, total=0, completed=0)
    assert stream.getvalue().splitlines()[0].startswith("runs: 0/0 elapsed 0:00")


def test_quiet_writes_nothing_to_stderr_and_verbose_a_line_per_epoch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", *TINY, "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert "test acc" in quiet.out  # results still go to stdout
    assert main(["train", *TINY, "-v"]) == 0
    verbose = capsys.readouterr().err
    assert len([line for line in verbose.splitlines() if PROGRESS.search(line)]) >= 3


def test_a_library_warning_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    from fathom.cli import _one_line_warning

    _one_line_warning(UserWarning("two\nlines"), UserWarning, "x.py", 1, command="train")
    assert capsys.readouterr().err == "fathom train: warning: two lines\n"
    before = warnings.showwarning
    assert main(["train", *TINY, "--quiet"]) == 0
    assert warnings.showwarning is before  # the command restores Python's own display


# ---------------------------------------------------------------- outputs refused up front


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 3\n")
    return path


def test_json_that_is_a_folder_is_refused_before_training(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert_refused(["train", *TINY, "--json", str(tmp_path / "out")], [tmp_path], "a folder")


def test_output_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    argv = ["train", *TINY, "--json", str(tmp_path / "f" / "r.json")]
    assert_refused(argv, [tmp_path], "is a file, not a folder")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc, a folder no one can write")
def test_output_in_an_unwritable_folder_is_refused() -> None:
    assert_refused(["train", *TINY, "--checkpoint", "/proc/m.pt"], [], "not writable")


def test_output_over_the_config_it_was_computed_from_is_refused(
    tmp_path: Path, config: Path
) -> None:
    argv = ["train", "--config", str(config), "--json", str(config), "--threads", "1"]
    assert_refused(argv, [tmp_path], "the --config input")


def test_output_over_the_config_through_a_hard_link_is_refused(
    tmp_path: Path, config: Path
) -> None:
    link = tmp_path / "link.json"
    link.hardlink_to(config)
    argv = ["train", "--config", str(config), "--json", str(link), "--threads", "1"]
    assert_refused(argv, [tmp_path], "the --config input")


def test_two_outputs_on_one_path_are_refused(tmp_path: Path) -> None:
    same = str(tmp_path / "x")
    argv = ["train", *TINY, "--json", same, "--checkpoint", same]
    assert_refused(argv, [tmp_path], "the --checkpoint output")


def test_report_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    store.write_bytes(b"")
    (tmp_path / "rep").write_text("x")
    argv = ["report", str(store), "--out", str(tmp_path / "rep")]
    assert_refused(argv, [tmp_path], "is a file, not a folder")


def test_export_onto_its_store_is_refused_and_the_store_kept(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    store.write_bytes(b"SQLite format 3\x00" + bytes(100))
    assert_refused(["export", str(store), "--out", str(store)], [tmp_path], "store")


def test_sweep_json_onto_its_store_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: {train: {epochs: 1}}\ngrid: {model.depth: [2]}\n")
    store = tmp_path / "runs.db"
    argv = ["sweep", str(spec), "--store", str(store), "--json", str(store)]
    assert_refused(argv, [tmp_path], "the --store output")


def test_a_refused_command_leaves_no_probe_file(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    before = snapshot(tmp_path)
    assert_refused(["train", *TINY, "--json", str(tmp_path / "out")], [])
    assert snapshot(tmp_path) == before


def test_progress_thread_is_stopped_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *TINY]) == 0
    names = {t.name for t in threading.enumerate()}
    assert "fathom-progress" not in names
