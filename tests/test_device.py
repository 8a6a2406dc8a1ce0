import os

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
    device.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    device.seed_everything(124)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) != a


def test_seed_everything_returns_none_so_a_setup_cell_prints_nothing():
    assert device.seed_everything(0) is None


def test_make_generator_gives_seeded_independent_generators():
    g1, g2 = device.make_generator(7), device.make_generator(7)
    assert isinstance(g1, torch.Generator)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    assert not torch.equal(torch.rand(3, generator=device.make_generator(8)),
                           torch.rand(3, generator=device.make_generator(7)))
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    torch.rand(5, generator=device.make_generator(1))  # does not touch the global generator
    assert torch.equal(torch.rand(1), before)
    for bad in (-1, 2.0, "1", True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            device.make_generator(bad)


def test_seed_everything_sets_cublas_workspace_before_cuda_is_touched(monkeypatch):
    """Deterministic cuBLAS needs CUBLAS_WORKSPACE_CONFIG before CUDA starts, or torch warns on every matmul."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seen = []

    def spy():
        seen.append(os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
        return False

    monkeypatch.setattr(torch.cuda, "is_available", spy)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: spy())  # torch.manual_seed calls it too
    device.seed_everything(0)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert seen and set(seen) == {":4096:8"}  # already set at the first touch of torch.cuda
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # a reader's own choice is kept
    device.seed_everything(0)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    device.seed_everything(0, deterministic=False)  # no deterministic kernels asked for: leave it alone
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_seed_must_be_a_non_negative_integer(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        device.seed_everything(bad)


def test_profile_follows_cuda_and_env(monkeypatch):
    monkeypatch.delenv("DLCORE_PROFILE", raising=False)
    monkeypatch.delenv("DLCORE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.profile() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.profile() == "gpu"
    monkeypatch.setenv("DLCORE_PROFILE", "cpu")
    assert device.profile() == "cpu"
    monkeypatch.setenv("DLCORE_PROFILE", "laptop")
    with pytest.raises(ValueError, match="DLCORE_PROFILE must be one of"):
        device.profile()


def test_profile_follows_a_forced_device(monkeypatch):
    """DLCORE_DEVICE=cpu on a GPU machine runs on the CPU, so it must get the cpu sizes too."""
    monkeypatch.delenv("DLCORE_PROFILE", raising=False)
    monkeypatch.delenv("DLCORE_SMOKE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("DLCORE_DEVICE", "cpu")
    assert device.profile() == "cpu" and device.pick(cpu=1, gpu=2) == 1
    monkeypatch.setenv("DLCORE_DEVICE", "cuda:0")
    assert device.profile() == "gpu" and device.pick(cpu=1, gpu=2) == 2
    monkeypatch.setattr(device, "_mps_available", lambda: True)
    monkeypatch.setenv("DLCORE_DEVICE", "mps")
    assert device.profile() == "cpu"  # the gpu sizes are measured on CUDA only
    monkeypatch.setenv("DLCORE_PROFILE", "gpu")  # an explicit profile still wins
    assert device.profile() == "gpu"


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
        with pytest.raises(ValueError, match="number of threads must be an integer"):
            device.set_threads("2")
        monkeypatch.setenv("OMP_NUM_THREADS", "two")
        with pytest.raises(ValueError, match="OMP_NUM_THREADS must be a whole number, got 'two'"):
            device.set_threads()
    finally:
        torch.set_num_threads(old)
    assert "torch" in device.describe() and "profile" in device.describe()
