"""dlcore.optim: every optimizer follows torch.optim step by step, every schedule equals torch's scheduler.

The gradients come from a fixed random quadratic, so they depend on where the parameters are: a rule that
differs from torch's in any step sends the two trajectories apart, and the difference grows instead of
averaging out.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from dlcore import optim
from dlcore.autograd import Tensor

STEPS = 100
RTOL = 1e-6
SHAPES = [(4, 3), (3,), (2, 2)]   # the last parameter gets a gradient only on even steps


def _quadratic(seed: int = 0):
    """Gradient of f(theta) = 0.5 theta^T A theta - c^T theta + 0.1 sum sin(theta) (A positive definite)."""
    rng = np.random.default_rng(seed)
    n = sum(int(np.prod(s)) for s in SHAPES)
    Q = rng.standard_normal((n, n))
    A = Q @ Q.T / n + 0.1 * np.eye(n)
    c = rng.standard_normal(n)

    def grads(arrays: list[np.ndarray]) -> list[np.ndarray]:
        theta = np.concatenate([a.ravel() for a in arrays])
        g = A @ theta - c + 0.1 * np.cos(theta)
        out, i = [], 0
        for s in SHAPES:
            k = int(np.prod(s))
            out.append(g[i:i + k].reshape(s))
            i += k
        return out

    init = [rng.standard_normal(s) for s in SHAPES]
    return init, grads


CASES = [
    ("SGD", dict(lr=0.1), {}),
    ("SGD", dict(lr=0.05, weight_decay=0.1), {}),
    ("SGD", dict(lr=0.05, momentum=0.9), {}),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), {}),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05), {}),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01), {}),
    ("RMSprop", dict(lr=0.01), {}),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1), {}),
    ("RMSprop", dict(lr=0.005, momentum=0.9, centered=True), {}),
    ("Adam", dict(lr=0.05), {}),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), {}),
    ("Adam", dict(lr=0.02, betas=(0.0, 0.9)), {}),
    ("AdamW", dict(lr=0.05), {}),
    ("AdamW", dict(lr=0.05, betas=(0.85, 0.995), weight_decay=0.3), {}),
    ("AdamW", dict(lr=0.05, weight_decay=0.0), {}),
    ("AdamW", dict(lr=0.05, eps=1e-2, weight_decay=0.1), {}),   # eps large enough to change the steps
]


def _run(name: str, kwargs: dict, dtype=np.float64, schedule=None):
    """Run dlcore's and torch's optimizer side by side; return both trajectories (one list per step)."""
    init, grads = _quadratic()
    ours = [Tensor(a.astype(dtype), requires_grad=True) for a in init]
    theirs = [torch.tensor(a.astype(dtype), requires_grad=True) for a in init]
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    traj_ours, traj_torch = [], []
    for t in range(STEPS):
        if schedule is not None:
            opt.lr = schedule(t)
            for group in topt.param_groups:
                group["lr"] = schedule(t)
        opt.zero_grad()
        topt.zero_grad()
        g_ours = grads([p.data for p in ours])
        g_torch = grads([p.detach().numpy() for p in theirs])
        for k, (p, tp) in enumerate(zip(ours, theirs)):
            if k == len(SHAPES) - 1 and t % 2:
                continue                       # grad stays None: both must skip this parameter
            p.grad = g_ours[k].astype(dtype)
            tp.grad = torch.from_numpy(g_torch[k].astype(dtype))
        opt.step()
        topt.step()
        traj_ours.append([p.data.copy() for p in ours])
        traj_torch.append([tp.detach().numpy().copy() for tp in theirs])
    return traj_ours, traj_torch


def _max_relative_gap(traj_a, traj_b) -> float:
    return max(float(np.linalg.norm(a - b) / np.linalg.norm(b)) for sa, sb in zip(traj_a, traj_b)
               for a, b in zip(sa, sb))


@pytest.mark.parametrize("name, kwargs, _", CASES, ids=[f"{n}-{k}" for n, k, _ in CASES])
def test_optimizer_matches_torch_for_100_steps(name, kwargs, _):
    ours, theirs = _run(name, kwargs)
    assert _max_relative_gap(ours, theirs) <= RTOL
    assert not np.allclose(ours[-1][0], ours[0][0]), "the parameters should move"


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.05)),
                                          ("AdamW", dict(lr=0.05, weight_decay=0.1))])
def test_optimizer_with_a_schedule_matches_torch(name, kwargs):
    ours, theirs = _run(name, kwargs, schedule=lambda t: optim.warmup_cosine_lr(t, kwargs["lr"], 10, STEPS))
    assert _max_relative_gap(ours, theirs) <= RTOL


def test_float32_parameters_stay_float32_and_match_torch():
    ours, theirs = _run("Adam", dict(lr=0.05), dtype=np.float32)
    assert all(a.dtype == np.float32 for a in ours[-1])
    assert _max_relative_gap(ours, theirs) <= 1e-4


def test_parameter_without_gradient_is_skipped():
    p, q = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    for opt in (optim.SGD([p, q], lr=0.1, momentum=0.9, weight_decay=0.1), optim.Adam([p, q], lr=0.1),
                optim.AdamW([p, q], lr=0.1), optim.RMSprop([p, q], lr=0.1, weight_decay=0.1)):
        p.grad, q.grad = np.ones(3), None
        opt.step()
        assert np.all(q.data == 1.0), f"{type(opt).__name__} moved a parameter that had no gradient"
        assert opt.state[1] == {}, "no state is created for a parameter that has no gradient"
        assert np.all(p.data < 1.0)


def test_zero_grad_sets_gradients_to_none():
    p = Tensor(np.ones(3), requires_grad=True)
    (p * p).sum().backward()
    opt = optim.SGD([p], lr=0.1)
    opt.zero_grad()
    assert p.grad is None


def test_optimizer_trains_an_autograd_model():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    y = X @ rng.standard_normal(5) + 0.5
    w, b = Tensor(np.zeros(5), requires_grad=True), Tensor(np.zeros(1), requires_grad=True)
    opt = optim.Adam([w, b], lr=0.05)
    for _ in range(300):
        loss = (((Tensor(X) @ w + b) - Tensor(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3


def test_lr_is_settable_and_checked():
    p = Tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    opt.lr = 0.5
    p.grad = np.ones(2)
    opt.step()
    assert np.allclose(p.data, 0.5)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0


# ----- schedules ----------------------------------------------------------------------------------------------

def _torch_lrs(make_scheduler, base_lr: float, steps: int) -> np.ndarray:
    """The lr that torch's optimizer uses at each step 0..steps-1 (the scheduler steps after the optimizer)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    sched = make_scheduler(opt)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return np.array(lrs)


S = torch.optim.lr_scheduler


@pytest.mark.parametrize("step_size, gamma", [(7, 0.5), (1, 0.9), (30, 0.1)])
def test_step_lr_matches_torch(step_size, gamma):
    ref = _torch_lrs(lambda o: S.StepLR(o, step_size, gamma), 0.3, 120)
    ours = np.array([optim.step_lr(t, 0.3, step_size, gamma) for t in range(120)])
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize("total, min_lr", [(100, 0.0), (37, 0.01), (1, 0.0)])
def test_cosine_lr_matches_torch_for_every_step(total, min_lr):
    ref = _torch_lrs(lambda o: S.CosineAnnealingLR(o, T_max=total, eta_min=min_lr), 0.3, total + 1)
    ours = np.array([optim.cosine_lr(t, 0.3, total, min_lr) for t in range(total + 1)])
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-15)
    assert optim.cosine_lr(total + 5, 0.3, total, min_lr) == min_lr   # ours stays at the floor afterwards


@pytest.mark.parametrize("warmup, total, min_lr, start", [(10, 100, 0.0, None), (5, 60, 0.02, None),
                                                          (20, 50, 0.0, 0.1), (1, 10, 0.0, None)])
def test_warmup_cosine_lr_matches_torch_sequential(warmup, total, min_lr, start):
    factor = 1 / warmup if start is None else start
    ref = _torch_lrs(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=factor, total_iters=warmup),
                                                  S.CosineAnnealingLR(o, T_max=total - warmup, eta_min=min_lr)],
                                              milestones=[warmup]), 0.3, total + 1)
    ours = np.array([optim.warmup_cosine_lr(t, 0.3, warmup, total, min_lr, start_factor=start)
                     for t in range(total + 1)])
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-15)
    assert ours[warmup] == pytest.approx(0.3) and ours[0] == pytest.approx(0.3 * factor)


@pytest.mark.parametrize("call", [
    lambda: optim.step_lr(-1, 0.1, 10), lambda: optim.step_lr(0, 0.1, 0), lambda: optim.step_lr(0, -0.1, 5),
    lambda: optim.cosine_lr(1.5, 0.1, 10), lambda: optim.cosine_lr(0, 0.1, 0),
    lambda: optim.warmup_cosine_lr(0, 0.1, 10, 10), lambda: optim.warmup_cosine_lr(0, 0.1, 0, 10),
    lambda: optim.warmup_cosine_lr(0, 0.1, 5, 10, start_factor=0.0),
    lambda: optim.warmup_cosine_lr(0, 0.1, 5, 10, start_factor=2.0),
], ids=["negative-t", "zero-step-size", "negative-lr", "float-t", "zero-total", "no-room-after-warmup",
        "zero-warmup", "zero-start", "start-above-one"])
def test_schedules_reject_bad_input(call):
    with pytest.raises(ValueError):
        call()


# ----- bad input ----------------------------------------------------------------------------------------------

def _p():
    return [Tensor(np.ones(3), requires_grad=True)]


@pytest.mark.parametrize("make, match", [
    (lambda: optim.SGD(_p(), lr=-0.1), "lr"),
    (lambda: optim.Adam(_p(), lr=-1e-3), "lr"),
    (lambda: optim.SGD(_p(), lr=0.1, momentum=-0.5), "momentum"),
    (lambda: optim.SGD(_p(), lr=0.1, nesterov=True), "nesterov"),
    (lambda: optim.SGD(_p(), lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), "nesterov"),
    (lambda: optim.SGD(_p(), lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda: optim.Adam(_p(), betas=(1.0, 0.999)), "betas"),
    (lambda: optim.Adam(_p(), betas=(0.9, -0.1)), "betas"),
    (lambda: optim.AdamW(_p(), betas=(0.9, 1.5)), "betas"),
    (lambda: optim.Adam(_p(), betas=0.9), "betas"),
    (lambda: optim.Adam(_p(), eps=0.0), "eps"),
    (lambda: optim.RMSprop(_p(), eps=-1e-8), "eps"),
    (lambda: optim.RMSprop(_p(), alpha=1.0), "alpha"),
    (lambda: optim.SGD([], lr=0.1), "empty"),
    (lambda: optim.Adam(iter([])), "empty"),
    (lambda: optim.SGD([np.ones(3)], lr=0.1), "grad"),
    (lambda: optim.SGD(_p() * 2, lr=0.1), "more than once"),
    (lambda: optim.SGD(_p(), lr="0.1"), "lr"),
    (lambda: optim.SGD(_p(), lr=float("nan")), "lr"),
], ids=["sgd-negative-lr", "adam-negative-lr", "negative-momentum", "nesterov-without-momentum",
        "nesterov-with-dampening", "negative-decay", "beta1-one", "beta2-negative", "adamw-beta2-above-one",
        "betas-not-a-pair", "adam-eps-zero", "rmsprop-eps-negative", "alpha-one", "empty-list",
        "empty-generator", "not-a-parameter", "duplicate", "lr-string", "lr-nan"])
def test_bad_hyperparameters_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_gradient_of_the_wrong_shape_is_rejected(name):
    p = Tensor(np.ones((2, 3)), requires_grad=True)
    opt = getattr(optim, name)([p], lr=0.1)
    p.grad = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"gradient of shape \(3, 2\) does not match .* \(2, 3\)"):
        opt.step()
    assert np.all(p.data == 1.0)


def test_repr_counts_parameters_and_shows_settings():
    one = optim.AdamW(_p(), lr=0.1)
    two = optim.SGD(_p() + _p(), lr=0.1, momentum=0.9)
    assert repr(one).startswith("AdamW(1 parameter, lr=0.1,") and "weight_decay=0.01" in repr(one)
    assert repr(two).startswith("SGD(2 parameters, lr=0.1, momentum=0.9")


# ----- what the messages, the defaults and the state say -------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: optim.SGD(_p(), lr=0.1, momentum=-0.5), r"^momentum must be >= 0, got -0\.5$"),
    (lambda: optim.SGD(_p(), lr=0.1, weight_decay=-1), r"^weight_decay must be >= 0, got -1\.0$"),
    (lambda: optim.SGD(_p(), lr=0.1, dampening=-0.1), r"^dampening must be >= 0, got -0\.1$"),
    (lambda: optim.SGD(_p(), lr=0.1, nesterov=True),
     r"^nesterov=True needs momentum > 0 and dampening = 0 \(Nesterov's step looks "
     r"ahead along the velocity, so there must be one\)$"),
    (lambda: optim.RMSprop(_p(), alpha=1.0), r"^alpha must be >= 0 and < 1, got 1\.0$"),
    (lambda: optim.RMSprop(_p(), eps=0.0), r"^eps must be > 0, got 0\.0$"),
    (lambda: optim.RMSprop(_p(), weight_decay=-1.0), r"^weight_decay must be >= 0, got -1\.0$"),
    (lambda: optim.RMSprop(_p(), momentum=-1.0), r"^momentum must be >= 0, got -1\.0$"),
    (lambda: optim.Adam(_p(), eps=0.0), r"^eps must be > 0, got 0\.0$"),
    (lambda: optim.Adam(_p(), weight_decay=-1.0), r"^weight_decay must be >= 0, got -1\.0$"),
    (lambda: optim.Adam(_p(), betas=(1.0, 0.999)), r"^betas\[0\] must be >= 0 and < 1, got 1\.0$"),
    (lambda: optim.Adam(_p(), betas=(0.9, 1.0)), r"^betas\[1\] must be >= 0 and < 1, got 1\.0$"),
    (lambda: optim.SGD([], lr=0.1), r"^optimizer got an empty parameter list: pass the model's parameters, "
     r"e\.g\. SGD\(model\.parameters\(\), lr=0\.1\)$"),
    (lambda: optim.SGD([np.ones(3)], lr=0.1), r"^parameter 0 \(ndarray\) has no \.data and \.grad; "
                                               r"pass dlcore\.autograd\.Tensor leaves \(requires_grad=True\)$"),
    (lambda: optim.SGD(_p() * 2, lr=0.1), r"^a parameter appears more than once"),
    (lambda: optim.step_lr(-1, 0.1, 10), r"^step t must be a non-negative integer, got -1$"),
    (lambda: optim.step_lr(0, -0.1, 10), r"^base_lr must be >= 0, got -0\.1$"),
    (lambda: optim.step_lr(0, 0.1, 0), r"^step_size must be a positive integer, got 0$"),
    (lambda: optim.step_lr(0, 0.1, 2.5), r"^step_size must be a positive integer, got 2\.5$"),
    (lambda: optim.step_lr(0, 0.1, True), r"^step_size must be a positive integer, got True$"),
    (lambda: optim.step_lr(0, 0.1, 10, gamma=-0.5), r"^gamma must be >= 0, got -0\.5$"),
    (lambda: optim.cosine_lr(0, -0.1, 10), r"^base_lr must be >= 0, got -0\.1$"),
    (lambda: optim.cosine_lr(0, 0.1, 0), r"^total_steps must be a positive integer, got 0$"),
    (lambda: optim.cosine_lr(0, 0.1, 10, min_lr=-1.0), r"^min_lr must be >= 0, got -1\.0$"),
    (lambda: optim.warmup_cosine_lr(0, -0.1, 5, 10), r"^base_lr must be >= 0, got -0\.1$"),
    (lambda: optim.warmup_cosine_lr(0, 0.1, 0, 10), r"^warmup_steps must be a positive integer, got 0$"),
    (lambda: optim.warmup_cosine_lr(0, 0.1, 5, 0), r"^total_steps must be a positive integer, got 0$"),
    (lambda: optim.warmup_cosine_lr(0, 0.1, 10, 10), r"^total_steps \(10\) must exceed warmup_steps \(10\)$"),
    (lambda: optim.warmup_cosine_lr(0, 0.1, 5, 10, start_factor=0.0), r"^start_factor must be > 0, got 0\.0$"),
    (lambda: optim.warmup_cosine_lr(0, 0.1, 5, 10, start_factor=2.0), r"^start_factor must be in \(0, 1\], got 2\.0$"),
])
def test_error_messages_name_the_setting_and_its_valid_range(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_defaults_and_hyperparameter_names_are_torchs():
    """hyperparameters() uses torch's keyword names, and every default equals torch.optim's."""
    for name, kwargs in [("SGD", dict(lr=0.1)), ("RMSprop", {}), ("Adam", {}), ("AdamW", {})]:
        ours = getattr(optim, name)(_p(), **kwargs).hyperparameters()
        theirs = getattr(torch.optim, name)([torch.zeros(3, requires_grad=True)], **kwargs).defaults
        assert ours == {k: theirs[k] for k in ours}, name
    assert set(optim.RMSprop(_p()).hyperparameters()) == {"lr", "alpha", "eps", "weight_decay", "momentum",
                                                         "centered"}


def test_schedule_defaults_are_torchs():
    ref = _torch_lrs(lambda o: S.StepLR(o, 7), 0.3, 40)                              # gamma = 0.1
    np.testing.assert_allclose([optim.step_lr(t, 0.3, 7) for t in range(40)], ref, rtol=1e-12)
    ref = _torch_lrs(lambda o: S.CosineAnnealingLR(o, T_max=20), 0.3, 21)            # eta_min = 0
    np.testing.assert_allclose([optim.cosine_lr(t, 0.3, 20) for t in range(21)], ref, rtol=1e-9, atol=1e-15)
    assert optim.warmup_cosine_lr(30, 0.3, 10, 30) == 0.0                            # min_lr = 0


def test_repr_rounds_floats_to_four_digits():
    assert repr(optim.SGD(_p(), lr=1 / 3)) == ("SGD(1 parameter, lr=0.3333, momentum=0, nesterov=False, "
                                               "weight_decay=0, dampening=0)")
    assert repr(optim.RMSprop(_p())) == ("RMSprop(1 parameter, lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0, "
                                         "momentum=0, centered=False)")


def test_a_subclass_needs_only_update_and_inherits_lr_as_its_hyperparameter():
    class SignSGD(optim.Optimizer):
        def _update(self, p, grad, state):
            p.data -= self.lr * np.sign(grad)

    p = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    opt = SignSGD([p], lr=0.25)
    assert opt.hyperparameters() == {"lr": 0.25} and repr(opt) == "SignSGD(1 parameter, lr=0.25)"
    p.grad = np.array([3.0, -0.1])
    opt.step()
    np.testing.assert_array_equal(p.data, [0.75, -0.75])
    base = optim.Optimizer([p], lr=0.1)
    with pytest.raises(NotImplementedError):
        base.step()                                  # the base class has no update rule of its own


def test_step_leaves_the_gradient_array_untouched_under_momentum():
    """The momentum buffer is a copy: stepping twice on the same .grad (no zero_grad) is torch's result."""
    ours, theirs = Tensor(np.ones(3), requires_grad=True), torch.ones(3, dtype=torch.float64, requires_grad=True)
    g = np.array([1.0, -2.0, 0.5])
    ours.grad, theirs.grad = g, torch.tensor(g)
    opt, topt = optim.SGD([ours], lr=0.1, momentum=0.9), torch.optim.SGD([theirs], lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.step()
        topt.step()
    np.testing.assert_array_equal(g, [1.0, -2.0, 0.5])
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", [("RMSprop", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, momentum=0.5)),
                                          ("RMSprop", dict(lr=0.01, centered=True)), ("Adam", dict(lr=0.01))])
def test_state_holds_torchs_buffers_and_step_count(name, kwargs):
    ours, theirs = Tensor(np.ones(3), requires_grad=True), torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt, topt = getattr(optim, name)([ours], **kwargs), getattr(torch.optim, name)([theirs], **kwargs)
    for _ in range(3):
        ours.grad, theirs.grad = np.full(3, 0.5), torch.full((3,), 0.5, dtype=torch.float64)
        opt.step()
        topt.step()
    tstate = topt.state[theirs]
    assert set(opt.state[0]) == set(tstate)
    assert opt.state[0]["step"] == int(tstate["step"]) == 3
    for key in set(tstate) - {"step"}:
        np.testing.assert_allclose(opt.state[0][key], tstate[key].numpy(), rtol=1e-12)


# ----- clip_grad_norm_ ---------------------------------------------------------------------------------
def _grad_pairs(scale: float, seed: int = 0):
    """Our Tensors and torch tensors with equal gradients (the middle parameter has none)."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for i, shape in enumerate([(3, 4), (5,), (2, 2)]):
        p, tp = Tensor(np.zeros(shape), requires_grad=True), torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        if i != 1:
            g = scale * rng.standard_normal(shape)
            p.grad, tp.grad = g.copy(), torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(tp)
    return ours, theirs


@pytest.mark.parametrize("scale, max_norm, norm_type", [(10.0, 1.0, 2.0), (0.01, 1.0, 2.0), (3.0, 0.5, 1.0),
                                                       (3.0, 0.5, float("inf")), (1.0, 2.5, 2.0)])
def test_clip_grad_norm_matches_torch(scale, max_norm, norm_type):
    ours, theirs = _grad_pairs(scale)
    total = optim.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert abs(total - ttotal.item()) <= 1e-12 * max(1.0, total)
    for p, tp in zip(ours, theirs):
        assert (p.grad is None) == (tp.grad is None)
        if p.grad is not None:
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12, atol=0)


def test_clip_grad_norm_returns_the_norm_before_and_caps_it_after():
    ours, _ = _grad_pairs(10.0)
    before = np.sqrt(sum(np.sum(p.grad ** 2) for p in ours if p.grad is not None))
    total = optim.clip_grad_norm_(ours, 1.0)
    after = np.sqrt(sum(np.sum(p.grad ** 2) for p in ours if p.grad is not None))
    assert total == pytest.approx(before, rel=1e-12)
    assert after == pytest.approx(1.0, rel=1e-5) and after <= 1.0
    assert ours[1].grad is None                         # a parameter without a gradient is skipped


def test_clip_grad_norm_is_a_no_op_below_max_norm_and_keeps_the_direction():
    ours, _ = _grad_pairs(0.01)
    before = [p.grad.copy() if p.grad is not None else None for p in ours]
    optim.clip_grad_norm_(ours, 1.0)
    for p, g in zip(ours, before):
        if g is not None:
            np.testing.assert_array_equal(p.grad, g)
    big, _ = _grad_pairs(100.0)
    g0 = big[0].grad.copy()
    optim.clip_grad_norm_(big, 1.0)
    cos = np.sum(g0 * big[0].grad) / (np.linalg.norm(g0) * np.linalg.norm(big[0].grad))
    assert cos == pytest.approx(1.0, abs=1e-12)


def test_clip_grad_norm_accepts_a_single_tensor_and_a_generator():
    p = Tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm_(p, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-5)
    q = Tensor(np.zeros(2), requires_grad=True)
    q.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm_((t for t in [q]), 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(q.grad, [0.6, 0.8], rtol=1e-5)
    assert optim.clip_grad_norm_([Tensor(np.zeros(2), requires_grad=True)], 1.0) == 0.0


@pytest.mark.parametrize("max_norm", [0.0, -1.0, float("nan"), "1"])
def test_clip_grad_norm_rejects_a_non_positive_max_norm(max_norm):
    ours, _ = _grad_pairs(1.0)
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm_(ours, max_norm)


def test_clip_grad_norm_on_a_non_finite_norm_follows_torch_or_raises():
    p = Tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    tp = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    tp.grad = torch.tensor([np.inf, 1.0], dtype=torch.float64)
    assert np.isinf(optim.clip_grad_norm_(p, 1.0))
    torch.nn.utils.clip_grad_norm_([tp], 1.0)
    np.testing.assert_array_equal(np.isnan(p.grad), torch.isnan(tp.grad).numpy())
