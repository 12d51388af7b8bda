"""Tests of fathom.devices: choosing the device (``--device``) and torch's threads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from fathom.config import ExperimentConfig
from fathom.devices import describe_device, flush_denormals, resolve_device, set_threads
from fathom.errors import ConfigError


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU-only machine, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def threads() -> Iterator[int]:
    """torch's intra-op thread count before the test, restored after it."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def _one_line_error(name: str) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_device(name)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_auto_is_cpu_on_a_cpu_only_machine(no_cuda: None) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_auto_follows_what_this_machine_has() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_cuda_without_cuda_is_a_one_line_config_error(no_cuda: None) -> None:
    for name in ("cuda", "cuda:0"):
        message = _one_line_error(name)
        assert "device (--device)" in message and repr(name) in message
        assert "no CUDA device" in message and "--device cpu" in message


def test_a_cuda_index_the_machine_does_not_have_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda:1")  # the current device, indexed
    message = _one_line_error("cuda:2")
    assert "'cuda:2'" in message and "2 CUDA device(s)" in message


@pytest.mark.parametrize("name", ["tpu", "mps", "meta", "cuda:x", ""])
def test_other_devices_are_refused(name: str) -> None:
    message = _one_line_error(name)
    assert "device (--device) must be auto, cpu, cuda or cuda:N" in message
    assert repr(name) in message


def test_config_refuses_an_unknown_device_and_keeps_it_out_of_the_key() -> None:
    from fathom.config import config_hash

    with pytest.raises(ConfigError, match="device") as info:
        ExperimentConfig(device="tpu").validate()
    assert "\n" not in str(info.value)
    assert ExperimentConfig().device == "auto"
    assert ExperimentConfig(device="cuda:1").validate().device == "cuda:1"
    assert config_hash(ExperimentConfig(device="cpu")) == config_hash(ExperimentConfig())


def test_set_threads(threads: int) -> None:
    set_threads(1)
    assert torch.get_num_threads() == 1
    set_threads(None)  # leaves it as it is
    assert torch.get_num_threads() == 1
    set_threads(2)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("value", [0, -1])
def test_set_threads_below_one_is_refused(threads: int, value: int) -> None:
    with pytest.raises(ConfigError, match="--threads must be >= 1") as info:
        set_threads(value)
    assert "\n" not in str(info.value)
    assert torch.get_num_threads() == threads  # unchanged


def test_describe_device_records_where_a_run_executed(threads: int) -> None:
    set_threads(1)
    assert describe_device(torch.device("cpu")) == {"device": "cpu", "threads": 1}


def _flushes() -> bool:
    """Whether CPU arithmetic flushes subnormals now (float64's 1e-323 is one)."""
    return bool(torch.tensor([1e-323], dtype=torch.float64).item() == 0.0)


@pytest.fixture
def denormals_kept() -> Iterator[None]:
    """Subnormals kept before the test (torch's default), and again after it."""
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)


def test_flush_denormals_zeroes_subnormals(denormals_kept: None) -> None:
    assert not _flushes()
    flush_denormals()
    assert _flushes()
    assert torch.tensor([1e-40], dtype=torch.float32).mul(1.0).item() == 0.0
    assert torch.tensor([1e-30], dtype=torch.float32).item() != 0.0  # normal floats stay


def test_training_flushes_denormals(denormals_kept: None) -> None:
    from fathom.config import config_from_dict
    from fathom.experiments.run import build_task_data, train_one

    cfg = config_from_dict({"data": {"name": "csbm"}, "train": {"epochs": 1}, "device": "cpu"})
    train_one(cfg, build_task_data(cfg))
    assert _flushes()
