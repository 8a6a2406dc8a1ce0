"""dlcore.diffusion: the schedule math, the forward process, the posterior, the samplers, guidance, bad input.

- schedules: ``alpha_bars`` are the running products of ``1 - betas``; the cosine schedule follows Nichol &
  Dhariwal (2021)'s ``f(t) / f(0)``; the posterior variance is ``beta_tilde``;
- ``q_sample``'s closed form has the moments of the one-step chain iterated ``t + 1`` times (Monte Carlo,
  seeded), and the posterior ``q(x_{t-1} | x_t, x_0)`` matches Gaussian conjugacy computed independently;
- samplers with an exact oracle denoiser: data = one point is recovered exactly by DDPM and DDIM; data =
  a Gaussian gets the right mean and standard deviation; DDIM with ``eta = 0`` uses no noise after ``x_T``
  and with ``eta = 1`` on every step is the posterior's ancestral sampler;
- the loss is zero for the oracle, label dropout sends the right fraction of labels to the null class;
- guidance follows ``(1 + w) eps(y) - w eps(null)``;
- bad input (timestep out of range, steps > T, guidance without labels, wrong shapes) raises a clear ValueError;
- planted bugs (wrong cumulative product, chain off by one step, wrong posterior coefficient, sigma on the last
  step, wrong guidance sign, DDIM stopping one step short of the data, DDIM's
  sigma = sqrt(beta) instead of sqrt(beta_tilde), ...) each fail a check above.
"""

from __future__ import annotations

import math
import types

import pytest
import torch
from _mutants import planted_bug

from dlcore import diffusion as diff


def _oracle_point(D, sched, point: torch.Tensor):
    """The exact eps predictor when the data distribution is the single point ``point``."""

    def model(x, t, y=None):
        ab = sched.alpha_bars[t].to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        return (x - ab.sqrt() * point) / (1 - ab).sqrt()

    return model


def _oracle_gauss(sched, m: float, s: float):
    """The exact eps predictor for data ~ N(m, s^2) per coordinate: eps = -sqrt(1 - ab) * score of p_t."""

    def model(x, t, y=None):
        ab = sched.alpha_bars[t].to(x.dtype)[:, None]
        var = ab * s ** 2 + 1 - ab
        return (1 - ab).sqrt() * (x - ab.sqrt() * m) / var

    return model


# ---------------------------------------------------------------------------------------------- checks
# Each check takes the module so that planted bugs can be run through it too.

def check_schedule(D):
    betas = D.linear_betas(50, 1e-3, 0.05)
    assert betas.shape == (50,) and betas.dtype == torch.float64
    assert abs(float(betas[0]) - 1e-3) < 1e-15 and abs(float(betas[-1]) - 0.05) < 1e-15
    s = D.Schedule(betas)
    prod, abar = 1.0, []
    for b in betas.tolist():
        prod *= 1 - b
        abar.append(prod)
    abar = torch.tensor(abar, dtype=torch.float64)
    assert torch.allclose(s.alpha_bars, abar, rtol=1e-12, atol=0)
    assert torch.allclose(s.alphas, 1 - betas)
    assert torch.allclose(s.sqrt_alpha_bars ** 2, abar) and torch.allclose(s.sqrt_one_minus_alpha_bars ** 2, 1 - abar)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    assert torch.allclose(s.alpha_bars_prev, prev)
    assert torch.allclose(s.posterior_variance, betas * (1 - prev) / (1 - abar))
    assert float(s.posterior_variance[0]) == 0.0


def check_cosine(D):
    T, s = 200, 0.008
    betas = D.cosine_betas(T, s=s)
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    expected = torch.tensor([f[t + 1] / f[0] for t in range(T)], dtype=torch.float64)
    abar = D.Schedule(betas).alpha_bars
    ok = betas < 0.999                                   # the clip changes only the last step(s)
    assert ok[: T - 1].all() and not ok[-1]
    assert torch.allclose(abar[:-1], expected[:-1], rtol=1e-10, atol=1e-14)
    assert float(betas[-1]) == pytest.approx(0.999)
    assert (betas[1:] >= betas[:-1]).all()                # increasing noise


def check_q_sample_vs_chain(D):
    """Closed form against t+1 iterated steps x <- sqrt(1 - beta) x + sqrt(beta) z: same mean and variance."""
    sched = D.Schedule(D.linear_betas(40, 1e-3, 0.08))
    g = torch.Generator().manual_seed(0)
    n = 40_000
    x0 = torch.tensor([1.5, -2.0, 0.3], dtype=torch.float64)
    for t in (0, 9, 39):
        x = x0.expand(n, 3).clone()
        for i in range(t + 1):
            b = float(sched.betas[i])
            x = math.sqrt(1 - b) * x + math.sqrt(b) * torch.randn(n, 3, generator=g, dtype=torch.float64)
        tt = torch.full((n,), t, dtype=torch.long)
        xq = D.q_sample(sched, x0.expand(n, 3), tt, generator=g).double()
        ab = float(sched.alpha_bars[t])
        for sample in (x, xq):
            assert torch.allclose(sample.mean(0), math.sqrt(ab) * x0, atol=0.025)
            assert torch.allclose(sample.var(0), torch.full((3,), 1 - ab, dtype=torch.float64), rtol=0.04)
    noise = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 5, 17, 39])
    exact = sched.sqrt_alpha_bars[t, None] * x0 + sched.sqrt_one_minus_alpha_bars[t, None] * noise
    assert torch.allclose(D.q_sample(sched, x0.expand(4, 3), t, noise), exact)


def check_posterior(D):
    """Mean and variance of q(x_{t-1} | x_t, x_0) against Gaussian conjugacy worked out independently."""
    sched = D.Schedule(D.cosine_betas(30))
    g = torch.Generator().manual_seed(1)
    t = torch.arange(1, 30)
    x0 = torch.randn(29, 2, generator=g, dtype=torch.float64)
    xt = torch.randn(29, 2, generator=g, dtype=torch.float64)
    mean, var = sched.posterior(x0, xt, t)
    ab_prev, beta = sched.alpha_bars[t - 1, None], sched.betas[t, None]
    # prior x_{t-1} ~ N(sqrt(ab_prev) x0, 1 - ab_prev); likelihood x_t | x_{t-1} ~ N(sqrt(1 - beta) x_{t-1}, beta)
    prec = 1 / (1 - ab_prev) + (1 - beta) / beta
    mu = (ab_prev.sqrt() * x0 / (1 - ab_prev) + (1 - beta).sqrt() * xt / beta) / prec
    assert torch.allclose(var.expand_as(mu), (1 / prec).expand_as(mu), rtol=1e-10)
    assert torch.allclose(mean, mu, rtol=1e-10, atol=1e-12)
    m0, v0 = sched.posterior(x0[:3], xt[:3], torch.zeros(3, dtype=torch.long))   # t = 0: x_{t-1} is x_0
    assert torch.allclose(m0, x0[:3]) and float(v0.abs().max()) == 0.0


def check_point_oracle(D):
    """Data = one point: with the exact eps every sampler lands on it (up to round-off)."""
    point = torch.tensor([0.7, -1.2])
    for betas in (D.linear_betas(100, 1e-4, 0.2), D.cosine_betas(50)):
        sched = D.Schedule(betas)
        model = _oracle_point(D, sched, point)
        g = torch.Generator().manual_seed(2)
        outs = [D.ddpm_sample(model, sched, (5, 2), generator=g),
                D.ddim_sample(model, sched, (5, 2), steps=sched.T, generator=g),
                D.ddim_sample(model, sched, (5, 2), steps=7, generator=g),
                D.ddim_sample(model, sched, (5, 2), steps=sched.T, eta=1.0, generator=g)]
        for out in outs:
            assert torch.allclose(out, point.expand(5, 2), atol=1e-4), out


def check_gauss_oracle(D):
    """Data ~ N(1.5, 0.5^2): ancestral DDPM (T = 1000) and DDIM (eta = 0, 1000 steps) reach its moments."""
    sched = D.Schedule(D.linear_betas(1000))
    model = _oracle_gauss(sched, 1.5, 0.5)
    g = torch.Generator().manual_seed(3)
    for out in (D.ddpm_sample(model, sched, (20_000, 1), generator=g),
                D.ddim_sample(model, sched, (20_000, 1), steps=1000, generator=g)):
        assert abs(float(out.mean()) - 1.5) < 0.02 and abs(float(out.std()) - 0.5) < 0.015


def check_ddim_deterministic(D):
    """eta = 0 draws only x_T: the generator advances by exactly shape's numbers; eta = 1 draws more."""
    sched = D.Schedule(D.linear_betas(20, 1e-3, 0.2))
    model = _oracle_gauss(sched, 0.0, 0.3)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    a = D.ddim_sample(model, sched, (6, 2), steps=10, eta=0.0, generator=g1)
    xT = torch.randn(6, 2, generator=g2)
    assert torch.equal(torch.randn(3, generator=g1), torch.randn(3, generator=g2))
    b = D.ddim_sample(model, sched, (6, 2), steps=10, eta=0.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    c = D.ddim_sample(model, sched, (6, 2), steps=10, eta=1.0, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(a, c)
    traj = D.ddim_sample(model, sched, (6, 2), steps=10, generator=torch.Generator().manual_seed(4),
                         return_trajectory=True)
    assert traj.shape == (11, 6, 2) and torch.equal(traj[0], xT) and torch.equal(traj[-1], a)


def check_ddim_eta_one_is_ancestral(D):
    """DDIM with eta = 1 on every timestep is ancestral sampling with the posterior q(x_{t-1} | x_t, x0_hat)."""
    sched = D.Schedule(D.cosine_betas(30))
    model = _oracle_gauss(sched, 0.5, 0.3)
    a = D.ddim_sample(model, sched, (7, 2), steps=30, eta=1.0, generator=torch.Generator().manual_seed(8))
    g = torch.Generator().manual_seed(8)
    x = torch.randn(7, 2, generator=g)
    for i in reversed(range(sched.T)):
        t = torch.full((7,), i, dtype=torch.long)
        x0 = (x - sched.sqrt_one_minus_alpha_bars[i].float() * model(x, t)) / sched.sqrt_alpha_bars[i].float()
        mean, var = sched.posterior(x0, x, t)
        x = mean + var.sqrt() * torch.randn(7, 2, generator=g) if i > 0 else mean
    assert torch.allclose(a, x, atol=1e-5), (a - x).abs().max()


def check_guidance(D):
    """A model whose eps is its label: guided eps = (1 + w) y - w * null."""

    class LabelModel(torch.nn.Module):
        num_classes = 5

        def forward(self, x, t, y=None):
            return y.to(x.dtype)[:, None].expand_as(x).clone()

    x, t, y = torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.tensor([0, 2, 4])
    for w in (0.0, 0.5, 3.0):
        out = D.guided_eps(LabelModel(), x, t, y, w)
        assert torch.allclose(out[:, 0], (1 + w) * y.float() - w * 5)
    out = D.guided_eps(LabelModel(), x, t, y, 2.0, null_class=9)
    assert torch.allclose(out[:, 0], 3 * y.float() - 2 * 9)


def check_loss(D):
    """The loss is the eps-MSE: zero for the exact oracle of a one-point data set, 1 for a model predicting 0."""
    sched = D.Schedule(D.linear_betas(50, 1e-3, 0.2))
    point = torch.tensor([0.4, 0.9], dtype=torch.float64)
    x0 = point.expand(4000, 2).clone()
    g = torch.Generator().manual_seed(5)
    assert float(D.ddpm_loss(_oracle_point(D, sched, point), sched, x0, generator=g)) < 1e-12
    zero = D.ddpm_loss(lambda x, t, y=None: torch.zeros_like(x), sched, x0, generator=g)
    assert abs(float(zero) - 1.0) < 0.05


def check_label_dropout(D):
    seen = []

    class Rec(torch.nn.Module):
        num_classes = 10

        def forward(self, x, t, y=None):
            seen.append(y.clone())
            return torch.zeros_like(x)

    x0, y = torch.zeros(4000, 2), torch.randint(0, 10, (4000,), generator=torch.Generator().manual_seed(6))
    for p, lo, hi in ((0.0, 0.0, 0.0), (0.25, 0.22, 0.28), (1.0, 1.0, 1.0)):
        D.ddpm_loss(Rec(), D.Schedule(D.linear_betas(10)), x0, torch.Generator().manual_seed(7), y=y, p_uncond=p)
        got = seen[-1]
        null = got == 10
        assert lo <= float(null.float().mean()) <= hi
        assert torch.equal(got[~null], y[~null])


CHECKS = {f.__name__: f for f in (check_schedule, check_cosine, check_q_sample_vs_chain, check_posterior,
                                  check_point_oracle, check_gauss_oracle, check_ddim_deterministic,
                                  check_ddim_eta_one_is_ancestral, check_guidance,
                                  check_loss, check_label_dropout)}


@pytest.mark.parametrize("name", list(CHECKS))
def test_checks_pass(name):
    CHECKS[name](diff)


# --------------------------------------------------------------------------------------------- networks

def test_time_embedding_and_mlp_denoiser():
    torch.manual_seed(0)
    emb = diff.TimeEmbedding(16)
    t = torch.tensor([0, 1, 99])
    feats = emb.sinusoidal(t)
    assert feats.shape == (3, 16) and torch.allclose(feats[0], torch.cat([torch.zeros(8), torch.ones(8)]))
    assert torch.allclose(feats[:, 0], torch.sin(t.float())) and emb(t).shape == (3, 16)
    net = diff.MLPDenoiser(dim=2, hidden=32, time_dim=16)
    x = torch.randn(5, 2)
    out = net(x, torch.randint(0, 100, (5,)))
    assert out.shape == (5, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    a, b = net(x, torch.zeros(5, dtype=torch.long)), net(x, torch.full((5,), 50))
    assert not torch.allclose(a, b)                       # the time input matters
    cond = diff.MLPDenoiser(dim=3, hidden=16, time_dim=8, num_classes=4)
    x3 = torch.randn(4, 3)
    tt = torch.zeros(4, dtype=torch.long)
    assert torch.equal(cond(x3, tt), cond(x3, tt, torch.full((4,), 4)))    # y=None means the null class
    assert not torch.allclose(cond(x3, tt, torch.tensor([0, 1, 2, 3])), cond(x3, tt))


def test_training_reduces_the_loss_and_sampling_runs_with_guidance():
    torch.manual_seed(0)
    sched = diff.Schedule(diff.cosine_betas(20))
    net = diff.MLPDenoiser(dim=2, hidden=32, time_dim=16, num_classes=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (256,), generator=g)
    x0 = torch.stack([y.float() * 2 - 1, torch.zeros(256)], 1)
    losses = []
    for _ in range(150):
        loss = diff.ddpm_loss(net, sched, x0, generator=g, y=y, p_uncond=0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:20]) / 20
    net.eval()
    yy = torch.tensor([0, 1] * 50)
    out = diff.ddim_sample(net, sched, (100, 2), steps=10, generator=g, y=yy, guidance=2.0)
    assert out.shape == (100, 2) and torch.isfinite(out).all()
    assert float(out[yy == 1, 0].mean()) > float(out[yy == 0, 0].mean())
    traj = diff.ddpm_sample(net, sched, (4, 2), generator=g, return_trajectory=True)
    assert traj.shape == (21, 4, 2)


def test_schedule_to_and_clip():
    s = diff.Schedule(diff.linear_betas(10, 1e-2, 0.3)).to("cpu")
    assert s.T == 10 and s.device.type == "cpu"
    point = torch.tensor([3.0, -3.0])
    model = _oracle_point(diff, s, point)
    out = diff.ddpm_sample(model, s, (3, 2), generator=torch.Generator().manual_seed(0), clip=1.0)
    assert float(out.abs().max()) <= 1.0 + 1e-6
    out = diff.ddim_sample(model, s, (3, 2), steps=5, generator=torch.Generator().manual_seed(0), clip=1.0)
    assert torch.allclose(out, torch.tensor([1.0, -1.0]).expand(3, 2), atol=1e-5)
    assert diff.ddim_timesteps(10, 10).tolist() == list(range(10))
    assert diff.ddim_timesteps(100, 1).tolist() == [99]
    seq = diff.ddim_timesteps(1000, 50)
    assert seq[0] == 0 and seq[-1] == 999 and (seq[1:] > seq[:-1]).all()


# ------------------------------------------------------------------------------------------- bad input

def test_bad_input_raises_clear_errors():
    s = diff.Schedule(diff.linear_betas(10))
    x0 = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"\[0, T\) = \[0, 10\)"):
        diff.q_sample(s, x0, torch.tensor([0, 10, 1]))
    with pytest.raises(ValueError, match=r"\[0, T\)"):
        diff.q_sample(s, x0, torch.tensor([-1, 0, 1]))
    with pytest.raises(ValueError, match="integer"):
        diff.q_sample(s, x0, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="batch size"):
        diff.q_sample(s, x0, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="noise must have the shape"):
        diff.q_sample(s, x0, torch.tensor([0, 1, 2]), torch.zeros(3, 3))
    net = diff.MLPDenoiser(hidden=8, time_dim=4)
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, T\]"):
        diff.ddim_sample(net, s, (2, 2), steps=11)
    with pytest.raises(ValueError, match="steps"):
        diff.ddim_sample(net, s, (2, 2), steps=0)
    with pytest.raises(ValueError, match="needs class labels"):
        diff.ddim_sample(net, s, (2, 2), steps=5, guidance=1.0)
    with pytest.raises(ValueError, match="needs class labels"):
        diff.ddpm_sample(net, s, (2, 2), guidance=1.0)
    with pytest.raises(ValueError, match="needs class labels"):
        diff.guided_eps(net, x0, torch.zeros(3, dtype=torch.long), None, 2.0)
    with pytest.raises(ValueError, match="no labels y"):
        diff.ddpm_loss(net, s, x0, p_uncond=0.1)
    with pytest.raises(ValueError, match="null class is unknown"):
        diff.ddpm_loss(lambda x, t, y=None: x, s, x0, y=torch.zeros(3, dtype=torch.long), p_uncond=0.5)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\)"):
        net(torch.zeros(3, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="unconditional"):
        net(x0, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must lie"):
        diff.MLPDenoiser(num_classes=3)(x0, torch.zeros(3, dtype=torch.long), torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="shape of x_t"):
        diff.ddpm_loss(lambda x, t, y=None: x[:, :1], s, x0)
    with pytest.raises(ValueError, match="shape must be"):
        diff.ddpm_sample(net, s, (4,))
    with pytest.raises(ValueError, match=r"open interval \(0, 1\)"):
        diff.Schedule(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="integer >= 1"):
        diff.linear_betas(0)
    with pytest.raises(ValueError, match="even integer"):
        diff.TimeEmbedding(7)
    with pytest.raises(ValueError, match="eta must be"):
        diff.ddim_sample(net, s, (2, 2), steps=5, eta=-1.0)


# ------------------------------------------------------------------------------------------ planted bugs

PLANTED_BUGS = {
    # (old, new, the check that must fail)
    "cumsum_not_cumprod": ("torch.cumprod(self.alphas, 0)", "1 - torch.cumsum(self.betas, 0)", "check_schedule"),
    "cosine_not_squared": ("math.pi / 2) ** 2", "math.pi / 2)", "check_cosine"),
    "q_sample_variance_not_sqrt": (
        "sched.gather(sched.sqrt_one_minus_alpha_bars, t,\n                                                    "
        "                      x0) * noise",
        "sched.gather(1 - sched.alpha_bars, t, x0) * noise", "check_q_sample_vs_chain"),
    "alpha_bar_off_by_one": ("self.sqrt_alpha_bars = self.alpha_bars.sqrt()",
                             "self.sqrt_alpha_bars = self.alpha_bars_prev.sqrt()", "check_q_sample_vs_chain"),
    "posterior_x0_coef_without_sqrt": ("mean = ab_prev.sqrt() * beta", "mean = ab_prev * beta", "check_posterior"),
    "ancestral_noise_on_last_step": ("        if i > 0:\n", "        if i >= 0:\n", "check_point_oracle"),
    "ancestral_eps_coef_wrong": ("beta / math.sqrt(1 - ab) * eps", "beta / (1 - ab) * eps", "check_gauss_oracle"),
    "ddim_last_step_not_to_data": ("if k > 0 else 1.0", "if k > 0 else float(sched.alpha_bars[0])",
                                   "check_point_oracle"),
    "ddim_sigma_is_beta_not_beta_tilde": ("sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))",
                                          "sigma = eta * math.sqrt(1 - ab / ab_prev)",
                                          "check_ddim_eta_one_is_ancestral"),
    "ddim_noise_with_eta_zero": ("        if sigma > 0:\n", "        if True:\n", "check_ddim_deterministic"),
    "guidance_sign": ("(1 + guidance) * eps_c - guidance * eps_u", "(1 - guidance) * eps_c + guidance * eps_u",
                      "check_guidance"),
    "loss_targets_x0": ("return F.mse_loss(pred, eps)", "return F.mse_loss(pred, x0)", "check_loss"),
    "dropout_inverted": ("< p_uncond).to(x0.device)", ">= p_uncond).to(x0.device)", "check_label_dropout"),
}


@pytest.mark.parametrize("bug", list(PLANTED_BUGS))
def test_planted_bugs_fail_a_check(bug):
    old, new, check = PLANTED_BUGS[bug]
    mod = planted_bug(diff, old, new)
    assert isinstance(mod, types.ModuleType)
    with pytest.raises(AssertionError):
        CHECKS[check](mod)


# ------------------------------------------------------------------------- boundaries of the validation

def test_validation_accepts_the_boundary_values_and_rejects_just_beyond():
    assert diff.linear_betas(1).shape == (1,) and diff.Schedule(torch.tensor([0.5])).T == 1     # T = 1 is legal
    assert diff.ddim_timesteps(1, 1).tolist() == [0] and diff.ddim_timesteps(10, 3).dtype == torch.long
    for T in (True, 2.0, 0):
        with pytest.raises(ValueError, match=r"^T \(the number of diffusion steps\) must be an integer >= 1"):
            diff.linear_betas(T)
    for b1, bT in ((0.0, 0.02), (1.0, 0.02), (1.5, 0.02), (1e-4, 0.0), (1e-4, 1.0), (1e-4, 1.5), (2.0, 0.5)):
        with pytest.raises(ValueError, match=r"^beta_1 and beta_T must lie in \(0, 1\)"):
            diff.linear_betas(10, b1, bT)
    assert torch.isfinite(diff.cosine_betas(10, s=0.0)).all()                                   # s = 0 is legal
    with pytest.raises(ValueError, match=r"^s must be >= 0"):
        diff.cosine_betas(10, s=-0.1)
    for mb in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"^max_beta must lie in \(0, 1\)"):
            diff.cosine_betas(10, max_beta=mb)
    for bad in (torch.full((2, 3), 0.1), torch.zeros(0)):
        with pytest.raises(ValueError, match=r"^betas must be a non-empty 1-D tensor"):
            diff.Schedule(bad)
    for bad in ([0.1, 0.0], [0.1, float("nan")], [0.1, 1.0]):
        with pytest.raises(ValueError, match=r"^every beta must lie in the open interval \(0, 1\)"):
            diff.Schedule(torch.tensor(bad))
    s32 = diff.Schedule(torch.tensor([0.1, 0.2], dtype=torch.float32))      # products in float64 whatever came in
    assert s32.betas.dtype == s32.alpha_bars.dtype == torch.float64
    with pytest.raises(ValueError, match="steps"):
        diff.ddim_timesteps(10, True)


def test_error_messages_say_what_was_wrong():
    s = diff.Schedule(diff.linear_betas(10))
    x0, t3 = torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^timesteps must have shape \(N,\), got \(3, 1\)"):
        s.check_t(torch.zeros(3, 1, dtype=torch.long))
    for f in (lambda: diff.q_sample(s, x0, t3[:2]), lambda: s.posterior(x0, x0, t3[:2])):
        with pytest.raises(ValueError, match=r"^x0 must have the batch size of t along its first axis: x0 has"):
            f()
    with pytest.raises(ValueError, match=r"^x_t and x0 must have the same shape, got \(3, 3\) and \(3, 2\)"):
        s.posterior(x0, torch.zeros(3, 3), t3)
    with pytest.raises(ValueError,
                       match=r"^x0 must have shape \(N, \.\.\.\) with at least one feature axis, got \(3,\)"):
        diff.ddpm_loss(lambda x, t, y=None: x, s, torch.zeros(3))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"^p_uncond must lie in \[0, 1\]"):
            diff.ddpm_loss(lambda x, t, y=None: x, s, x0, y=t3, p_uncond=p)
    with pytest.raises(ValueError, match=r"^p_uncond > 0 drops labels to the null class, but no labels y were given$"):
        diff.ddpm_loss(lambda x, t, y=None: x, s, x0, p_uncond=0.1)
    with pytest.raises(ValueError, match=r"^the null class is unknown: pass null_class= \(the index num_classes of "
                                         r"the unconditional label\) or give the model an attribute num_classes$"):
        diff.ddpm_loss(lambda x, t, y=None: x, s, x0, y=t3, p_uncond=0.5)
    with pytest.raises(ValueError, match=r"^guidance=2\.0 needs class labels y \(guidance compares eps\(x, y\) with "
                                         r"eps\(x, null\)\); pass y or set guidance=0$"):
        diff.guided_eps(lambda x, t, y=None: x, x0, t3, None, 2.0)
    with pytest.raises(ValueError, match=r"^guidance must be a number >= 0, got -1\.0"):
        diff.ddpm_sample(lambda x, t, y=None: x, s, (3, 2), guidance=-1.0)
    for y in (torch.zeros(3, 1, dtype=torch.long), torch.zeros(3), torch.zeros(2, dtype=torch.long)):
        with pytest.raises(ValueError, match=r"^labels y must be an integer tensor of shape \(3,\), got dtype"):
            diff.ddpm_sample(lambda x, t, y=None: x, s, (3, 2), y=y)
    with pytest.raises(ValueError, match=r"^t must have shape \(N,\), got \(3, 1\)"):
        diff.TimeEmbedding(4).sinusoidal(torch.zeros(3, 1))


def test_networks_validate_their_arguments():
    assert diff.TimeEmbedding(2).sinusoidal(torch.tensor([0])).shape == (1, 2)                     # dim = 2 is legal
    for dim in (4.0, 3, 0, True):
        with pytest.raises(ValueError, match=r"^dim must be an even integer >= 2"):
            diff.TimeEmbedding(dim)
    net = diff.MLPDenoiser(dim=1, hidden=1, time_dim=2, num_classes=1, depth=1)                  # all at their minimum
    assert net(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), torch.tensor([0, 1])).shape == (2, 1)
    for name in ("dim", "hidden", "depth"):
        for v in (0, 2.0, True):
            with pytest.raises(ValueError, match=rf"^{name} must be a positive integer, got {v!r}$"):
                diff.MLPDenoiser(**{name: v})
    for k in (0, 2.0):
        with pytest.raises(ValueError, match=r"^num_classes must be None or a positive integer"):
            diff.MLPDenoiser(num_classes=k)
    net = diff.MLPDenoiser(hidden=8, time_dim=4)
    x = torch.zeros(3, 2)
    for t in (torch.zeros(2, dtype=torch.long), torch.zeros(3), torch.zeros(3, 1, dtype=torch.long)):
        with pytest.raises(ValueError, match=r"^t must be an integer tensor of shape \(3,\), got dtype"):
            net(x, t)
    with pytest.raises(ValueError, match=r"^this MLPDenoiser is unconditional \(num_classes=None\) but labels y"):
        net(x, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))


# ------------------------------------------------------------------------------- defaults and formulas

def test_defaults_are_the_documented_ones():
    assert torch.equal(diff.cosine_betas(40), diff.cosine_betas(40, s=0.008, max_beta=0.999))
    model = lambda x, t, y=None: x * 2 + y[:, None]                                              # noqa: E731
    x, t, y = torch.ones(2, 2), torch.zeros(2, dtype=torch.long), torch.tensor([1, 2])
    assert torch.equal(diff.guided_eps(model, x, t, y), model(x, t, y))        # guidance defaults to 0
    net = diff.MLPDenoiser()
    assert net.inp.out_features == 128 and net.time.dim == 32 and net.label is None
    assert sum(isinstance(m, torch.nn.Linear) for m in net.body) == 3          # depth 3: 2 hidden + the output
    assert diff.TimeEmbedding(8).base == 10000.0


def test_time_embedding_is_the_documented_formula():
    torch.manual_seed(0)
    emb = diff.TimeEmbedding(8)
    t = torch.tensor([0, 1, 7, 99])
    i = torch.arange(4, dtype=torch.float64)
    angles = t.double()[:, None] * 10000.0 ** (-i / 4)[None, :]
    expected = torch.cat([angles.sin(), angles.cos()], 1)
    assert torch.allclose(emb.sinusoidal(t).double(), expected, atol=1e-4)
    h = emb.mlp[0](emb.sinusoidal(t))
    assert torch.allclose(emb(t), emb.mlp[2](torch.nn.functional.silu(h)), atol=1e-6)


def test_mlp_denoiser_is_the_documented_computation():
    torch.manual_seed(0)
    net = diff.MLPDenoiser(dim=3, hidden=6, time_dim=4, num_classes=2, depth=3)
    assert net.label.num_embeddings == 3                          # K + 1 rows: row K is the null class
    kinds = [type(m) for m in net.body]
    Lin, SiLU = torch.nn.Linear, torch.nn.SiLU
    assert kinds == [SiLU, Lin, SiLU, Lin, SiLU, Lin]
    x, t, y = torch.randn(4, 3), torch.tensor([0, 3, 9, 50]), torch.tensor([0, 1, 2, 1])
    h = net.inp(x) + net.cond(net.time(t) + net.label(y))
    for lin in (net.body[1], net.body[3], net.body[5]):
        h = lin(torch.nn.functional.silu(h))
    assert torch.allclose(net(x, t, y), h, atol=1e-6)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        net(x, t, torch.tensor([0, 1, 3, 1]))


def test_q_sample_accepts_a_batch_of_scalars_and_is_reproducible():
    s = diff.Schedule(diff.linear_betas(10))
    x0, t = torch.tensor([1.0, -1.0, 2.0]), torch.tensor([0, 5, 9])
    out = diff.q_sample(s, x0, t, generator=torch.Generator().manual_seed(1))     # x0 of shape (N,): 0 feature axes
    assert out.shape == (3,)
    assert torch.equal(out, diff.q_sample(s, x0, t, generator=torch.Generator().manual_seed(1)))


def test_ddpm_loss_draws_every_timestep_reproducibly_and_respects_null_class():
    s = diff.Schedule(diff.linear_betas(10))
    seen = []

    def rec(x, t, y=None):
        seen.append((x.clone(), t.clone(), None if y is None else y.clone()))
        return torch.zeros_like(x)

    x0, y = torch.zeros(2000, 2), torch.randint(0, 3, (2000,), generator=torch.Generator().manual_seed(0))
    l1 = diff.ddpm_loss(rec, s, x0, torch.Generator().manual_seed(3), y=y, p_uncond=0.5, null_class=7)
    l2 = diff.ddpm_loss(rec, s, x0, torch.Generator().manual_seed(3), y=y, p_uncond=0.5, null_class=7)
    (xa, ta, ya), (xb, tb, yb) = seen
    assert torch.equal(l1, l2) and torch.equal(xa, xb) and torch.equal(ta, tb) and torch.equal(ya, yb)
    assert set(ta.tolist()) == set(range(10))                           # t ~ U{0, .., T-1}, 0 included
    assert set(ya.tolist()) == {0, 1, 2, 7}                             # dropped labels become null_class
    diff.ddpm_loss(rec, s, x0, torch.Generator().manual_seed(3), y=y)   # p_uncond = 0 needs no null class
    assert torch.equal(seen[-1][2], y) and torch.equal(seen[-1][1], ta)


# ------------------------------------------------------------------------------------ dtypes and devices

def test_dtypes_follow_the_data_and_numbers_do_not_depend_on_the_default_dtype():
    s = diff.Schedule(diff.linear_betas(10))
    x0, t = torch.zeros(3, 2, dtype=torch.bfloat16), torch.tensor([0, 5, 9])
    assert diff.q_sample(s, x0, t).dtype == torch.bfloat16
    assert diff.ddpm_loss(lambda x, t, y=None: torch.zeros_like(x), s, x0).dtype == torch.bfloat16
    assert diff._randn((2,), None, "cpu", torch.float64).dtype == torch.float64
    emb, model = diff.TimeEmbedding(8), _oracle_gauss(s, 0.0, 0.5)
    ref = diff.ddpm_sample(model, s, (3, 2), generator=torch.Generator().manual_seed(0))
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:   # a seed means the same numbers whatever the default dtype; the features stay float32
        assert torch.equal(diff.ddpm_sample(model, s, (3, 2), generator=torch.Generator().manual_seed(0)), ref)
        assert emb.sinusoidal(t).dtype == torch.float32
    finally:
        torch.set_default_dtype(old)


def test_everything_stays_on_the_requested_device():
    """The 'meta' device stands in for an accelerator: a tensor left on the CPU would fail or come back there."""
    s = diff.Schedule(diff.linear_betas(6))

    def model(x, t, y=None):
        assert t.device == x.device and (y is None or y.device == x.device)
        return torch.zeros_like(x)

    y = torch.tensor([0, 1])
    for out in (diff.ddpm_sample(model, s, (2, 2), y=y, device="meta"),
                diff.ddim_sample(model, s, (2, 2), steps=3, eta=1.0, device="meta"),
                diff.ddpm_sample(diff.MLPDenoiser(hidden=8, time_dim=4).to("meta"), s, (2, 2)),
                diff.guided_eps(model, torch.zeros(2, 2, device="meta"), torch.zeros(2, dtype=torch.long,
                                                                                   device="meta"), y, 1.0, 5),
                diff.q_sample(s, torch.zeros(2, 2, device="meta"), torch.tensor([0, 5])),
                diff.TimeEmbedding(4).sinusoidal(torch.tensor([1, 2], device="meta"))):
        assert out.device.type == "meta"


def test_nan_guidance_and_bool_num_classes_are_rejected():
    s = diff.Schedule(diff.linear_betas(10))
    model = diff.MLPDenoiser(dim=2, hidden=8, time_dim=8, num_classes=3)
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="guidance must be a number >= 0"):
        diff.ddim_sample(model, s, (2, 2), steps=2, y=y, guidance=float("nan"))
    with pytest.raises(ValueError, match="num_classes must be None or a positive integer"):
        diff.MLPDenoiser(num_classes=True)
