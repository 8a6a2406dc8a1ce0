import numpy as np
import pytest
import torch

from dlcore import device


def test_get_device_is_cpu_without_accelerators(monkeypatch):
    monkeypatch.delenv("DLCORE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_mps_available", lambda: False)
    assert device.get_device() == torch.device("cpu")


def test_get_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("DLCORE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_mps_available", lambda: True)
    assert device.get_device().type == "mps"


def test_env_overrides_device(monkeypatch):
    monkeypatch.setenv("DLCORE_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.get_device() == torch.device("cpu")


def test_unknown_or_unavailable_device_gives_clear_error(monkeypatch):
    monkeypatch.setenv("DLCORE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'.*DLCORE_DEVICE"):
        device.get_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        device.get_device("cuda")
    monkeypatch.setattr(device, "_mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS is not available"):
        device.get_device("mps")


def test_seed_everything_makes_all_generators_repeatable():
    import random

    device.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    g1 = device.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    g2 = device.seed_everything(123)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_seed_must_be_a_non_negative_integer(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        device.seed_everything(bad)


def test_profile_follows_cuda_and_env(monkeypatch):
    monkeypatch.delenv("DLCORE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.profile() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.profile() == "gpu"
    monkeypatch.setenv("DLCORE_PROFILE", "cpu")
    assert device.profile() == "cpu"
    monkeypatch.setenv("DLCORE_PROFILE", "laptop")
    with pytest.raises(ValueError, match="DLCORE_PROFILE must be one of"):
        device.profile()


def test_pick_chooses_by_profile_and_smoke(monkeypatch):
    monkeypatch.delenv("DLCORE_SMOKE", raising=False)
    monkeypatch.setenv("DLCORE_PROFILE", "cpu")
    assert device.pick(cpu=1, gpu=2, smoke=0) == 1
    monkeypatch.setenv("DLCORE_PROFILE", "gpu")
    assert device.pick(cpu=1, gpu=2, smoke=0) == 2
    monkeypatch.setenv("DLCORE_SMOKE", "1")
    assert device.is_smoke()
    assert device.pick(cpu=1, gpu=2, smoke=0) == 0
    assert device.pick(cpu=1, gpu=2) == 2  # no smoke size offered: the profile decides


def test_set_threads_and_describe(monkeypatch):
    old = torch.get_num_threads()
    try:
        assert device.set_threads(1) == 1
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert device.set_threads() == 1
        with pytest.raises(ValueError, match="threads must be >= 1"):
            device.set_threads(0)
    finally:
        torch.set_num_threads(old)
    assert "torch" in device.describe() and "profile" in device.describe()
