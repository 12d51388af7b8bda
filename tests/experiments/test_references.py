"""Tests of fathom.experiments.references: the published figures shipped as YAML data."""

from __future__ import annotations

from pathlib import Path

import pytest

from fathom.errors import ConfigError
from fathom.experiments.references import (
    REFERENCES_DIR,
    Figure,
    list_references,
    load_reference_file,
    load_references,
)
from fathom.experiments.reproduce import SUITES

SUITE_FILES = [
    "deepgcn",
    "depth",
    "gae",
    "heterophily",
    "neighbors-match",
    "ogb",
    "planetoid",
    "tu",
]


def test_every_suite_has_a_references_file() -> None:
    assert list_references() == SUITE_FILES
    assert set(SUITES) <= set(SUITE_FILES)


@pytest.mark.parametrize("suite", SUITE_FILES)
def test_every_file_validates_and_every_figure_has_a_source(suite: str) -> None:
    table = load_reference_file(REFERENCES_DIR / f"{suite}.yaml")
    assert table.suite == suite and table.figures
    assert table == load_references(suite)
    for fig in table.figures:
        assert fig.source in table.sources.values()
        assert fig.source.strip() and fig.model and fig.dataset
        assert fig.value is None or isinstance(fig.value, float)


@pytest.mark.parametrize(
    ("suite", "key", "value", "source"),
    [
        ("planetoid", ("gcn", "cora"), 81.5, "Kipf & Welling, ICLR 2017, Table 2"),
        ("planetoid", ("appnp", "cora"), 82.06, "Bag of Tricks"),
        ("planetoid", ("jknet", "pubmed"), 78.0, "JKNet 4 layers"),
        ("depth", ("gcn", "cora", 64), 28.7, "DropEdge"),
        ("depth", ("resgcn", "cora", 2), None, "DropEdge"),  # a dash in the table
        ("depth", ("incepgcn", "pubmed", 32), None, "DropEdge"),
        ("depth", ("jknet-dropedge", "citeseer", 64), 72.2, "DropEdge"),
        ("depth", ("gcnii", "cora", 16), 84.69, "Bag of Tricks"),
        ("depth", ("gcnii", "cora", 64), 85.5, "chennnM/GCNII README"),
        ("heterophily", ("gcnii-star", "chameleon"), 62.48, "GCNII README"),
        ("heterophily", ("gcnii", "chameleon"), None, "GCNII's own figure"),
        ("tu", ("gin", "proteins"), 76.2, "Xu et al."),
        ("gae", ("vgae-ap", "cora"), 92.6, "Variational Graph Auto-Encoders"),
        ("deepgcn", ("resgcn-28", "s3dis"), 52.11, "S3DIS Area 5 mIoU"),
    ],
)
def test_known_figures(
    suite: str, key: tuple[str, str] | tuple[str, str, int], value: float | None, source: str
) -> None:
    fig = load_references(suite).get(*key)
    assert fig is not None
    assert fig.value == value and source in fig.source


def test_neighbors_match_figure_3() -> None:
    table = load_references("neighbors-match")
    assert table.unit == "fraction"
    assert table.get("gcn", "tree-neighbors-match", radius=4) == Figure(
        "gcn",
        "tree-neighbors-match",
        None,
        4,
        0.7,
        "Alon & Yahav, On the Bottleneck of Graph Neural Networks and its Practical "
        "Implications, ICLR 2021 (Figure 3)",
    )
    assert table.get("ggnn", "tree-neighbors-match", radius=5).value == 0.6  # type: ignore[union-attr]
    assert table.get("gin", "tree-neighbors-match", radius=7) is None
    assert len(table.figures) == 26


def test_missing_cells_and_suites() -> None:
    assert load_references("heterophily").get("gcn", "cornell") is None  # not located
    assert load_references("planetoid").get("gcn", "cora", depth=8) is None
    assert [f.depth for f in load_references("depth").select("gcn", "cora")] == [
        2,
        4,
        8,
        16,
        32,
        64,
    ]
    with pytest.raises(ConfigError, match="no published references for suite 'nosuch'"):
        load_references("nosuch")


GOOD = """\
suite: good
metric: test accuracy
unit: percent
sources:
  paper: "Someone et al., 2024, Table 1"
figures:
  - {model: gcn, dataset: cora, value: 80.0, source: paper}
"""


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("suite: good", "suite: other", ["suite", "'good'"]),
        ("unit: percent", "unit: points", ["unit", "percent, fraction"]),
        ("metric: test accuracy\n", "", ["metric is missing"]),
        ("metric:", "colour: red\nmetric:", ["colour is not a known key"]),
        ("value: 80.0", "value: 180.0", ["figures[0].value", "0..100"]),
        ("value: 80.0", "value: high", ["figures[0].value", "number or null"]),
        ("value: 80.0", "value: true", ["figures[0].value"]),
        ("source: paper}", "source: book}", ["figures[0].source", "'book'"]),
        ("source: paper}", "source: paper, depth: 0}", ["figures[0].depth", "positive int"]),
        ("source: paper}", "source: paper, depth: 2, radius: 2}", ["figures[0]", "not both"]),
        ("source: paper}", "source: paper, note: ''}", ["figures[0].note", "non-empty"]),
        ("source: paper}", "source: paper, layers: 2}", ["figures[0].layers", "not a known"]),
        ("{model: gcn, ", "{", ["figures[0].model is missing"]),
        ("figures:\n", "figures: []\nx:\n", ["x is not a known key"]),
        ("  paper:", "  unused: x\n  paper:", ["sources.unused", "cited by no figure"]),
        (
            "  - {model",
            "  - {model: gcn, dataset: cora, value: 1.0, source: paper}\n  - {model",
            ["figures[1]", "repeats the cell of figures[0]"],
        ),
        ("figures:", "figures: [", ["not valid YAML", "line"]),
    ],
)
def test_bad_files_raise_one_line_errors_naming_file_and_key(
    tmp_path: Path, old: str, new: str, words: list[str]
) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert load_reference_file(path).get("gcn", "cora").value == 80.0  # type: ignore[union-attr]
    assert old in GOOD
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_reference_file(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text
    for word in words:
        assert word in text, text


def test_an_empty_or_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"must be a mapping with keys suite.*empty file"):
        load_reference_file(empty)
    with pytest.raises(ConfigError, match="references file not found"):
        load_reference_file(tmp_path / "absent.yaml")


def _bomb(levels: int) -> str:
    """Each level lists the previous one twice: 2**levels values from 2 * levels aliases."""
    lines = ["l0: &l0 [lol, lol]"]
    lines += [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("suite: a\nsuite: b\n", ["line 2", "duplicate key 'suite'"]),
        (_bomb(30), ["alias"]),
    ],
)
def test_duplicate_keys_and_alias_bombs_are_refused(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_reference_file(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)
