"""dlcore.init: gains equal PyTorch's, sampled scales match the formulas and torch.nn.init, init_ covers a model.

Statistical checks draw about 10^5 weights or more: the sample standard deviation of n normal draws has a
relative standard error of 1/sqrt(2n) (0.2 % at n = 10^5), so a 2 % tolerance is 10 standard errors wide,
and every error these tests guard against (fan-out for fan-in on a 4:1 layer, a forgotten gain of sqrt(2))
moves the std by 40 % or more.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from dlcore import init

FAN_IN, FAN_OUT = 800, 200          # deliberately not square: swapping the fans changes the std by 2x
REL_TOL = 0.02


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("name, param", [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                                         ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 1.0),
                                         ("selu", None), ("conv1d", None), ("conv2d", None)])
def test_gain_equals_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(nn.init.calculate_gain(name, param), rel=1e-15)


def test_gains_are_the_derived_values():
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", 0.5) == pytest.approx(math.sqrt(2 / 1.25))


def test_xavier_and_he_std_formulas():
    assert init.xavier_std(FAN_IN, FAN_OUT) == pytest.approx(math.sqrt(2 / (FAN_IN + FAN_OUT)))
    assert init.xavier_std(FAN_IN, FAN_OUT, gain=5 / 3) == pytest.approx(5 / 3 * math.sqrt(2 / 1000))
    assert init.he_std(FAN_IN) == pytest.approx(math.sqrt(2 / FAN_IN))
    assert init.he_std(FAN_IN, "tanh") == pytest.approx(5 / 3 / math.sqrt(FAN_IN))
    assert init.he_std(FAN_IN, "leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / (1.04 * FAN_IN)))


def test_samplers_return_the_books_layout_and_the_formula_std():
    rng = np.random.default_rng(0)
    Wx = init.xavier_normal(FAN_IN, FAN_OUT, rng)
    Wh = init.he_normal(FAN_IN, FAN_OUT, rng)
    assert Wx.shape == (FAN_IN, FAN_OUT) and Wh.shape == (FAN_IN, FAN_OUT)
    assert abs(Wx.mean()) < 0.02 * Wx.std() and abs(Wh.mean()) < 0.02 * Wh.std()
    assert rel_err(Wx.std(), math.sqrt(2 / (FAN_IN + FAN_OUT))) < REL_TOL
    assert rel_err(Wh.std(), math.sqrt(2 / FAN_IN)) < REL_TOL
    Wl = init.he_normal(FAN_IN, FAN_OUT, rng, nonlinearity="leaky_relu", param=0.3)
    assert rel_err(Wl.std(), math.sqrt(2 / (1.09 * FAN_IN))) < REL_TOL


def test_samplers_match_torch_init_on_the_same_layer():
    """torch's weight of this layer has shape (out, in) = (FAN_OUT, FAN_IN); ours (in, out)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    w = torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64)
    torch_he = nn.init.kaiming_normal_(w.clone(), mode="fan_in", nonlinearity="relu").std().item()
    torch_xavier = nn.init.xavier_normal_(w.clone()).std().item()
    torch_xavier_tanh = nn.init.xavier_normal_(w.clone(), gain=5 / 3).std().item()
    assert rel_err(init.he_normal(FAN_IN, FAN_OUT, rng).std(), torch_he) < REL_TOL
    assert rel_err(init.xavier_normal(FAN_IN, FAN_OUT, rng).std(), torch_xavier) < REL_TOL
    assert rel_err(init.xavier_normal(FAN_IN, FAN_OUT, rng, gain=5 / 3).std(), torch_xavier_tanh) < REL_TOL


def test_samplers_are_repeatable_with_a_seed():
    a = init.he_normal(30, 20, np.random.default_rng(5))
    b = init.he_normal(30, 20, np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_torch_fans_follow_the_weight_layouts():
    assert init.torch_fans(nn.Linear(FAN_IN, FAN_OUT).weight) == (FAN_IN, FAN_OUT)   # weight is (out, in)
    assert init.torch_fans(nn.Conv2d(3, 16, 5).weight) == (3 * 25, 16 * 25)
    for layer in [nn.Linear(7, 3), nn.Conv1d(4, 6, 3), nn.Conv2d(3, 8, (3, 5)), nn.Conv3d(2, 4, 3)]:
        assert init.torch_fans(layer.weight) == nn.init._calculate_fan_in_and_fan_out(layer.weight)


def make_model() -> nn.Module:
    """Non-square layers of every supported kind, nested, so a wrong fan or a skipped layer shows."""
    return nn.Sequential(
        nn.Sequential(nn.Conv1d(16, 64, 9), nn.ReLU()),            # fan_in 144, 36,864 weights
        nn.Conv2d(32, 48, 5),                                      # fan_in 800, 38,400 weights
        nn.Linear(FAN_IN, FAN_OUT), nn.ReLU(),                     # fan_in 800, 160,000 weights
        nn.Linear(FAN_OUT, 600),                                   # fan_in 200, 120,000 weights
    )


LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
CONV_TOL = 0.04    # the convolutions hold about 4 x 10^4 weights: relative standard error 0.4 %


@pytest.mark.parametrize("scheme, kwargs, expected", [
    ("normal", {"std": 0.3}, lambda fi, fo: 0.3),
    ("xavier", {}, lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("xavier", {"gain": 5 / 3}, lambda fi, fo: 5 / 3 * math.sqrt(2 / (fi + fo))),
    ("he", {}, lambda fi, fo: math.sqrt(2 / fi)),
    ("he", {"nonlinearity": "tanh"}, lambda fi, fo: 5 / 3 / math.sqrt(fi)),
    ("he", {"nonlinearity": "leaky_relu", "param": 0.2}, lambda fi, fo: math.sqrt(2 / (1.04 * fi))),
])
def test_init_touches_every_layer_with_its_fans_and_zeroes_biases(scheme, kwargs, expected):
    torch.manual_seed(0)
    model = make_model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)                                           # anything init_ misses stays 7
    assert init.init_(model, scheme, **kwargs) is model
    layers = [m for m in model.modules() if isinstance(m, LAYERS)]
    assert len(layers) == 4
    for layer in layers:
        fan_in, fan_out = init.torch_fans(layer.weight)
        want = expected(fan_in, fan_out)
        tol = REL_TOL if isinstance(layer, nn.Linear) else CONV_TOL
        assert rel_err(layer.weight.std().item(), want) < tol, (type(layer).__name__, scheme)
        assert abs(layer.weight.mean().item()) < 0.05 * want
        assert torch.count_nonzero(layer.bias) == 0


def test_init_respects_nn_linear_fan_in_is_weight_shape_1():
    layer = nn.Linear(FAN_IN, FAN_OUT)
    assert layer.weight.shape == (FAN_OUT, FAN_IN)
    torch.manual_seed(0)
    init.init_(layer, "he")
    assert rel_err(layer.weight.std().item(), math.sqrt(2 / FAN_IN)) < REL_TOL          # in = 800
    assert rel_err(layer.weight.std().item(), math.sqrt(2 / FAN_OUT)) > 0.4              # not out = 200


def test_init_leaves_other_modules_alone_and_handles_bias_free_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 40, bias=False), nn.LayerNorm(40), nn.Linear(40, 3))
    init.init_(model, "normal", std=0.0)
    assert torch.count_nonzero(model[0].weight) == 0 and torch.count_nonzero(model[2].weight) == 0
    assert torch.all(model[1].weight == 1) and torch.all(model[1].bias == 0)   # LayerNorm untouched


def test_init_is_repeatable_under_a_seed():
    torch.manual_seed(3)
    a = init.init_(make_model(), "he")
    torch.manual_seed(3)
    b = init.init_(make_model(), "he")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("call, match", [
    (lambda: init.calculate_gain("swish"), "unknown nonlinearity"),
    (lambda: init.calculate_gain("identity"), "unknown nonlinearity"),
    (lambda: init.calculate_gain("relu", 0.1), "negative slope"),
    (lambda: init.calculate_gain("leaky_relu", "big"), "finite number"),
    (lambda: init.calculate_gain("leaky_relu", float("nan")), "finite number"),
    (lambda: init.xavier_std(0, 10), "fan_in must be at least 1"),
    (lambda: init.xavier_std(10, -3), "fan_out must be at least 1"),
    (lambda: init.xavier_std(10.0, 3), "whole number"),
    (lambda: init.xavier_std(10, 3, gain=0.0), "gain must be positive"),
    (lambda: init.he_std(0), "fan_in must be at least 1"),
    (lambda: init.he_std(10, "softmax"), "unknown nonlinearity"),
    (lambda: init.he_normal(10, 0, np.random.default_rng(0)), "fan_out must be at least 1"),
    (lambda: init.he_normal(10, 5, 0), "numpy.random.Generator"),
    (lambda: init.xavier_normal(10, 5, None), "numpy.random.Generator"),
    (lambda: init.torch_fans(torch.zeros(5)), "at least 2 dimensions"),
    (lambda: init.init_(nn.Linear(3, 2), "uniform"), "unknown scheme"),
    (lambda: init.init_(nn.Linear(3, 2), "normal"), "needs std"),
    (lambda: init.init_(nn.Linear(3, 2), "normal", std=-1.0), "non-negative"),
    (lambda: init.init_(nn.Linear(3, 2), "he", std=0.1), "only used by scheme='normal'"),
    (lambda: init.init_(nn.Linear(3, 2), "he", nonlinearity="swish"), "unknown nonlinearity"),
    (lambda: init.init_(nn.Linear(3, 2), "he", gain=2.0), "xavier' only"),
    (lambda: init.init_(nn.Sequential(nn.ReLU()), "he"), "no nn.Linear or nn.Conv"),
])
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_input_leaves_the_model_unchanged():
    layer = nn.Linear(3, 2)
    before = layer.weight.detach().clone()
    with pytest.raises(ValueError):
        init.init_(layer, "he", nonlinearity="swish")
    assert torch.equal(layer.weight, before)


def test_a_fan_of_one_is_allowed():
    assert init.xavier_std(1, 1) == pytest.approx(1.0)
    assert init.he_std(1) == pytest.approx(math.sqrt(2))
    assert init.he_normal(1, 1, np.random.default_rng(0)).shape == (1, 1)


@pytest.mark.parametrize("gain", [float("inf"), float("nan"), True, "2", None])
def test_gain_must_be_a_finite_number(gain):
    with pytest.raises(ValueError, match=r"^gain must be a finite number, got "):
        init.xavier_std(10, 3, gain=gain)


@pytest.mark.parametrize("call, match", [
    (lambda: init.calculate_gain("swish"), r"expected one of linear, conv1d, conv2d, .*, leaky_relu, selu$"),
    (lambda: init.init_(nn.Linear(3, 2), "uniform"), r"^unknown scheme 'uniform'; expected one of normal, xavier, he$"),
    (lambda: init.init_(nn.Linear(3, 2), "normal", std=-1.0), r"^std must be non-negative, got -1\.0$"),
    (lambda: init.init_(nn.Linear(3, 2), "normal", std=float("inf")), r"^std must be a finite number, got inf$"),
    (lambda: init.init_(nn.Linear(3, 2), "normal"), r"^scheme='normal' needs std"),
    (lambda: init.init_(nn.Linear(3, 2), "xavier", gain=0.0), r"^gain must be positive, got 0\.0$"),
    (lambda: init.init_(nn.Linear(3, 2), "xavier", gain=-2.0), r"^gain must be positive, got -2\.0$"),
    (lambda: init.init_(nn.Sequential(nn.ReLU()), "he"), r"no nn\.Linear or nn\.Conv layer in Sequential to "),
    (lambda: init.torch_fans(torch.zeros(5)), r"at least 2 dimensions \(out, in, \.\.\.\), got \(5,\)$"),
    (lambda: init.torch_fans([[1.0, 2.0]]), r"at least 2 dimensions \(out, in, \.\.\.\), got \[\[1\.0, 2\.0\]\]$"),
])
def test_error_messages_say_what_was_given_and_what_is_allowed(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_he_init_validates_param_with_the_nonlinearity_before_touching_the_model():
    layer = nn.Linear(3, 2)
    before = layer.weight.detach().clone()
    for kwargs in (dict(nonlinearity="relu", param=0.1), dict(nonlinearity="leaky_relu", param="big")):
        with pytest.raises(ValueError, match="negative slope"):
            init.init_(layer, "he", **kwargs)
    assert torch.equal(layer.weight, before)


def test_he_init_for_leaky_relu_defaults_to_slope_0_01_like_calculate_gain():
    torch.manual_seed(0)
    layer = init.init_(nn.Linear(FAN_IN, FAN_OUT), "he", nonlinearity="leaky_relu")
    want = init.he_std(FAN_IN, "leaky_relu")                     # sqrt(2 / (1 + 0.01**2) / fan_in)
    assert want == pytest.approx(math.sqrt(2 / (1.0001 * FAN_IN)))
    assert rel_err(layer.weight.std().item(), want) < REL_TOL
