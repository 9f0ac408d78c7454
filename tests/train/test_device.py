"""torch_device reads accelerator= and devices= as Lightning does, for one-process code."""

import pytest
import torch

from lucidvi.train import torch_device


@pytest.mark.parametrize("devices", ["auto", -1, 1, [0]])
def test_one_device_on_the_cpu(devices):
    assert torch_device("cpu", devices) == torch.device("cpu")


@pytest.mark.parametrize("devices", [2, [0, 1], "2"])
def test_several_devices_are_refused(devices):
    """devices=2 is two devices in Lightning (not device 2): batch EM cannot use them."""
    with pytest.raises(ValueError, match="one process on one device"):
        torch_device("cpu", devices)


@pytest.mark.parametrize(
    ("devices", "expected"), [("auto", "cuda:0"), (1, "cuda:0"), ([1], "cuda:1")]
)
def test_a_listed_gpu_index_is_used(monkeypatch, devices, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert torch_device("gpu", devices) == torch.device(expected)


def test_unknown_or_missing_accelerators_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="accelerator must be"):
        torch_device("tpu")
    with pytest.raises(ValueError, match="no GPU is available"):
        torch_device("gpu")
