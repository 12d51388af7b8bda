"""Hostile configs, specs and numbers at the command line: exit 2, one line, nothing written.

Each case runs ``fathom ...`` in-process (:func:`hostile.assert_refused`) and watches its
input files and the output paths it names: nothing may be created, changed or deleted. The
classes covered: YAML that is not a config (alias bombs, recursion, nesting, duplicate keys,
binary, non-UTF-8, oversized, empty, not a mapping), numbers that are not finite or out of
range, empty names, options that do not apply, models too large to build and sweep grids too
large to list.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fathom.yamlio import MAX_BYTES
from hostile import assert_refused

FAST = ["--epochs", "1", "--dataset", "csbm"]


def _bomb(levels: int = 40) -> str:
    lines = ["model:", "  l0: &l0 [lol, lol]"]
    lines += [f"  l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


CONFIGS: dict[str, tuple[bytes, list[str]]] = {
    "alias-bomb": (_bomb().encode(), ["alias bombs"]),
    "bomb-as-a-value": (
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n".encode()
            for p, k in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + b"model: {depth: *i}\n",
        ["alias bombs"],
    ),
    "recursive-alias": (b"model: &m {depth: *m}\n", ["recursive alias"]),
    "deep-nesting": (b"model: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", ["deeper than 64"]),
    "duplicate-section": (
        b"model:\n  depth: 4\ntrain:\n  epochs: 1\nmodel:\n  hidden: 8\n",
        ["line 5", "duplicate key 'model'", "first at line 1"],
    ),
    "duplicate-key": (b"model:\n  depth: 4\n  depth: 8\n", ["line 3", "duplicate key 'depth'"]),
    "binary": (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), ["not a text file"]),
    "latin-1": (b"data:\n  name: caf\xe9\n", ["not UTF-8", "line 2"]),
    "control-character": (b"model: {act: \x1b[31m}\n", ["not valid YAML"]),
    "oversized": (b"# " + b"x" * MAX_BYTES + b"\n", ["too large"]),
    "empty": (b"", ["empty file"]),
    "only-comments": (b"# model:\n#   depth: 4\n", ["empty document"]),
    "null": (b"null\n", ["empty document"]),
    "a-list": (b"- model\n- data\n", ["must be a mapping", "got a list"]),
    "python-tag": (b"model: !!python/object/apply:os.system [touch pwned]\n", ["not valid YAML"]),
    "huge-integer": (b"seed: " + b"9" * 5000 + b"\n", ["cannot read"]),
    "infinite-lr": (b"train:\n  lr: .inf\n", ["train.lr", "finite"]),
    "exp-overflow": (b"train:\n  lr: 1e999\n", ["train.lr", "finite"]),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_hostile_config_files(case: str, tmp_path: Path) -> None:
    text, words = CONFIGS[case]
    config = tmp_path / "cfg.yaml"
    config.write_bytes(text)
    out = tmp_path / "out.json"
    assert_refused(["train", "--config", str(config), "--json", str(out)], [tmp_path], *words)


def test_a_program_given_as_the_config(tmp_path: Path) -> None:
    ls = Path("/bin/ls")
    if not ls.is_file():
        pytest.skip("no /bin/ls")
    out = tmp_path / "out.json"
    assert_refused(["train", "--config", str(ls), "--json", str(out)], [tmp_path, ls], "/bin/ls")


NUMBERS: dict[str, tuple[list[str], list[str]]] = {
    "lr-inf": (["--lr", "inf"], ["--lr", "finite"]),
    "lr-nan": (["--lr", "nan"], ["--lr", "finite"]),
    "lr-negative": (["--lr", "-0.1"], ["--lr", "> 0"]),
    "weight-decay-negative": (["--weight-decay=-1e-4"], ["--weight-decay", ">= 0"]),
    "weight-decay-inf": (["--weight-decay", "inf"], ["--weight-decay", "finite"]),
    "dropout-one": (["--dropout", "1.0"], ["--dropout", "[0, 1)"]),
    "dropout-nan": (["--dropout", "nan"], ["--dropout", "finite"]),
    "epochs-zero": (["--epochs", "0"], ["--epochs"]),
    "epochs-absurd": (["--epochs", str(10**12)], ["--epochs", "1,000,000"]),
    "patience-negative": (["--patience", "-1"], ["--patience"]),
    "seed-65-bits": (["--seed", str(2**64)], ["--seed", "2**63"]),
    "seed-300-digits": (["--seed", "9" * 300], ["--seed", "2**63"]),
    "seed-negative": (["--seed", "-1"], ["--seed", ">= 0"]),
    "seeds-zero": (["--seeds", "0"], ["--seeds"]),
    "seeds-absurd": (["--seeds", str(10**9)], ["--seeds", "10,000"]),
    "seed-plus-seeds": (["--seed", str(2**63 - 1), "--seeds", "2"], ["--seed", "2**63"]),
    "depth-100000": (["--depth", "100000"], ["--depth", "10,000"]),
    "hidden-million": (["--depth", "3", "--hidden", "1000000"], ["--hidden", "parameters"]),
    "depth-times-width": (["--depth", "10000", "--hidden", "4096"], ["--depth", "TB"]),
    "empty-dataset": (["--dataset", ""], ["--dataset", "empty"]),
    "heads-on-gcn": (["model.heads=4"], ["model.heads", "'gcn'"]),
    "jk-without-jk-skip": (["--jk", "max"], ["model.jk", "skip"]),
    "skip-project-without-residual": (["--skip-project"], ["--skip-project", "'none'"]),
    "empty-data-dir": (["--data-dir", ""], ["--data-dir", "folder"]),
    "classes-over-nodes": (
        ["data.synthetic.num_nodes=50", "data.synthetic.num_classes=1000000000"],
        ["num_classes", "(50)"],
    ),
    "generated-graph-over-memory": (
        ["data.synthetic.num_nodes=10000000000000"],
        ["10,000,000,000,000 nodes", "memory budget"],
    ),
    "override-bomb": (
        ["model.depth=" + "[" * 5000 + "]" * 5000],
        ["override", "deeper than 64"],
    ),
}


@pytest.mark.parametrize("case", list(NUMBERS))
def test_numbers_names_and_options(case: str, tmp_path: Path) -> None:
    flags, words = NUMBERS[case]
    out = tmp_path / "out.json"
    argv = ["train", *FAST, "--json", str(out), *flags]
    if "--dataset" in flags:
        argv = ["train", "--epochs", "1", "--json", str(out), *flags]
    assert_refused(argv, [tmp_path], *words)


def test_empty_preset_name(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert_refused(["train", "--preset", "", "--json", str(out)], [tmp_path], "--preset")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            "name: huge\ngrid:\n  seed: range(1000)\n  model.hidden: range(1, 1001)\n"
            "  train.epochs: range(1, 1001)\n",
            ["1,000,000,000 points", "--max-runs"],
        ),
        ("name: huge\ngrid:\n  seed: range(0, 10000000000000)\n", ["values", "--max-runs"]),
        ("name: b\nbase:\n" + _bomb()[len("model:\n") :], ["alias bombs"]),
        ("name: d\nname: e\n", ["duplicate key 'name'"]),
        ("", ["empty file"]),
    ],
)
def test_hostile_sweep_specs_touch_no_store(spec: str, words: list[str], tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    store = tmp_path / "runs.db"
    out = tmp_path / "out.json"
    for extra in ([], ["--dry-run"]):
        argv = ["sweep", str(path), "--store", str(store), "--json", str(out), *extra]
        assert_refused(argv, [tmp_path], *words)
