"""Tests for dlcore.metrics: Fréchet distance, mode coverage on the ring, and the cached digits judge."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlcore import metrics
from dlcore.data import load_digits, make_ring
from dlcore.metrics import (
    fid_digits,
    frechet_distance,
    frechet_distance_gaussians,
    judge_classes,
    judge_features,
    mode_coverage,
)


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ---- Fréchet distance -----------------------------------------------------------------------------------

def test_frechet_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(200, 5))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_gaussians_closed_form_diagonal():
    # Diagonal covariances commute: tr term = sum (sqrt(a) - sqrt(b))^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance_gaussians(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-10)


def test_frechet_gaussians_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    for d in (2, 8, 32):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        covmean = linalg.sqrtm(s1 @ s2).real          # the reference FID implementation's formula
        ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
        assert frechet_distance_gaussians(mu1, s1, mu2, s2) == pytest.approx(ref, abs=1e-8)


def test_frechet_samples_approach_analytic_value():
    rng = np.random.default_rng(2)
    d = 3
    mu1, mu2 = np.zeros(d), np.array([1.0, 0.5, -0.5])
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    a = rng.multivariate_normal(mu1, s1, size=100_000)
    b = rng.multivariate_normal(mu2, s2, size=100_000)
    exact = frechet_distance_gaussians(mu1, s1, mu2, s2)
    assert frechet_distance(a, b) == pytest.approx(exact, rel=0.03, abs=0.01)


def test_frechet_symmetric_and_translation():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
    b = rng.normal(size=(400, 4)) * 2 + 1
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    shift = np.array([3.0, -1.0, 0.5, 2.0])
    # Same covariance, means apart by shift: the distance is exactly ||shift||^2.
    assert frechet_distance(a + shift, a) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_frechet_accepts_torch_tensors():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x + 1) == pytest.approx(3.0, rel=1e-6)


@pytest.mark.parametrize("a, b, match", [
    (np.zeros((10, 3)), np.zeros((10, 4)), "same number of features"),
    (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2 rows"),
    (np.zeros(10), np.zeros((10, 1)), "2-D array"),
    (np.full((10, 2), np.nan), np.zeros((10, 2)), "NaN"),
])
def test_frechet_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(a, b)


def test_frechet_gaussians_bad_shapes():
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance_gaussians(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


# ---- mode coverage --------------------------------------------------------------------------------------

RING_K, RING_R, RING_STD = 8, 2.0, 0.05
CENTERS = RING_R * np.c_[np.cos(2 * np.pi * np.arange(RING_K) / RING_K),
                         np.sin(2 * np.pi * np.arange(RING_K) / RING_K)]


def test_mode_coverage_real_ring_covers_all():
    X, _ = make_ring(n=2000, k=RING_K, radius=RING_R, std=RING_STD, seed=0)
    modes, quality = mode_coverage(X, CENTERS, RING_STD)
    assert modes == 8
    assert quality > 0.98          # 3 sigma in 2-D holds 1 - exp(-4.5) = 98.9 % of a Gaussian


def test_mode_coverage_collapsed_sampler():
    rng = np.random.default_rng(0)
    X = CENTERS[3] + rng.normal(0, RING_STD, (1000, 2))
    modes, quality = mode_coverage(X, CENTERS, RING_STD)
    assert modes == 1 and quality > 0.95


def test_mode_coverage_uses_k_std():
    # Samples at 2 sigma from each center: inside 3 sigma, outside 1 sigma.
    X = CENTERS + np.array([2 * RING_STD, 0.0])
    assert mode_coverage(X, CENTERS, RING_STD) == (8, 1.0)
    assert mode_coverage(X, CENTERS, RING_STD, k=1.0) == (0, 0.0)


def test_mode_coverage_uniform_noise_is_low_quality():
    X = np.random.default_rng(0).uniform(-3, 3, (2000, 2))
    _, quality = mode_coverage(X, CENTERS, RING_STD)
    assert quality < 0.05          # 8 disks of radius 0.15 cover ~1.6 % of the square


def test_mode_coverage_min_count():
    rng = np.random.default_rng(1)
    X = np.concatenate([CENTERS[0] + rng.normal(0, RING_STD, (100, 2)), CENTERS[1:2]])  # one stray sample
    assert mode_coverage(X, CENTERS, RING_STD)[0] == 2
    assert mode_coverage(X, CENTERS, RING_STD, min_count=5)[0] == 1


@pytest.mark.parametrize("samples, kwargs, match", [
    (np.zeros((10, 3)), {}, "same dimension"),
    (np.zeros(10), {}, "2-D array"),
    (np.zeros((0, 2)), {}, "at least one sample"),
    (np.zeros((10, 2)), {"std": 0.0}, "positive"),
    (np.zeros((10, 2)), {"min_count": 0}, "min_count"),
])
def test_mode_coverage_bad_input(samples, kwargs, match):
    args = {"std": RING_STD, **kwargs}
    with pytest.raises(ValueError, match=match):
        mode_coverage(samples, CENTERS, **args)


# ---- the digits judge -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def judge_env(tmp_path_factory):
    """Train the judge once per session into a private cache folder; yield (model, cache dir)."""
    root = tmp_path_factory.mktemp("judge_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLCORE_DATA", str(root))
        model = metrics.digits_judge(seed=0)
        yield model, root


@pytest.fixture(scope="session")
def digits():
    return load_digits(seed=0)


def test_judge_accuracy_and_mode(judge_env, digits):
    model, _ = judge_env
    assert not model.training and not model.from_cache
    assert next(model.parameters()).device.type == "cpu"
    labels, conf = judge_classes(model, digits.X_test)
    assert labels.shape == conf.shape == (len(digits.y_test),)
    assert (labels == digits.y_test).mean() >= 0.97
    assert np.all((conf > 0) & (conf <= 1))


def test_judge_cache_is_reused(judge_env, digits, monkeypatch):
    model, root = judge_env
    monkeypatch.setenv("DLCORE_DATA", str(root))
    files = list((root / "judge").glob("*.pt"))
    assert len(files) == 1 and metrics.JUDGE_VERSION in files[0].name
    mtime = files[0].stat().st_mtime_ns
    monkeypatch.setattr(metrics, "_train_judge", lambda seed: pytest.fail("the cached judge was retrained"))
    again = metrics.digits_judge(seed=0)
    assert again.from_cache and not again.training
    assert files[0].stat().st_mtime_ns == mtime
    x = digits.X_test[:20]
    np.testing.assert_array_equal(judge_features(again, x), judge_features(model, x))
    assert not list((root / "judge").glob("*.tmp"))        # atomic save left nothing behind


def test_fid_digits_real_beats_noise(judge_env, digits):
    model, _ = judge_env
    rng = np.random.default_rng(0)
    real = fid_digits(model, digits.X_test, digits.X_train)
    noise = fid_digits(model, rng.uniform(0, 1, digits.X_test.shape).astype(np.float32), digits.X_train)
    assert real < 10 and noise > 10 * real


def test_judge_collapsed_digits_score_badly(judge_env, digits):
    # A "generator" that only ever emits zeros: every sample is a real image, yet FID and the classes expose it.
    model, _ = judge_env
    zeros = digits.X_train[digits.y_train == 0]
    collapsed = zeros[np.random.default_rng(0).integers(0, len(zeros), len(digits.X_test))]
    labels, _ = judge_classes(model, collapsed)
    assert np.bincount(labels, minlength=10).argmax() == 0 and (labels == 0).mean() > 0.95
    assert fid_digits(model, collapsed, digits.X_train) > 5 * fid_digits(model, digits.X_test, digits.X_train)


def test_judge_features_flat_and_image_inputs_agree(judge_env, digits):
    model, _ = judge_env
    x = digits.X_test[:30]
    f = judge_features(model, x)
    assert f.shape == (30, 128) and f.dtype == np.float64
    np.testing.assert_allclose(f, judge_features(model, torch.from_numpy(x.reshape(30, 64))), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(5, 8, 8), (5, 3, 8, 8), (5, 63), (0, 64)])
def test_judge_bad_shapes(judge_env, shape):
    model, _ = judge_env
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\) or \(N, 64\)|no images"):
        judge_features(model, np.zeros(shape, np.float32))
    with pytest.raises(ValueError):
        judge_classes(model, np.zeros(shape, np.float32))
