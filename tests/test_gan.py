"""Tests for dlcore.gan: the GAN losses against torch's BCE-with-logits, their gradients, PacGAN packing."""

import pytest
import torch
from torch import nn

from dlcore import gan


def _logits(n=64, seed=0, scale=4.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, generator=g, dtype=torch.float64) * scale)


# ---------------------------------------------------------------- losses against torch
def test_discriminator_loss_matches_bce_with_logits():
    real, fake = _logits(50, 0), _logits(30, 1)  # different batch sizes: two separate means
    bce = nn.BCEWithLogitsLoss()
    expected = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
    assert torch.allclose(gan.discriminator_loss(real, fake), expected, rtol=1e-12, atol=1e-12)


def test_discriminator_loss_is_not_symmetric_in_its_arguments():
    real, fake = _logits(40, 2) + 3.0, _logits(40, 3) - 3.0
    assert gan.discriminator_loss(real, fake) < gan.discriminator_loss(fake, real)


def test_nonsaturating_generator_loss_is_bce_with_label_one():
    fake = _logits(64, 4)
    expected = nn.BCEWithLogitsLoss()(fake, torch.ones_like(fake))
    assert torch.allclose(gan.generator_loss(fake), expected, rtol=1e-12, atol=1e-12)
    assert torch.allclose(gan.generator_loss(fake, kind="nonsaturating"), expected, rtol=1e-12, atol=1e-12)


def test_saturating_generator_loss_is_minus_bce_with_label_zero():
    fake = _logits(64, 5)
    expected = -nn.BCEWithLogitsLoss()(fake, torch.zeros_like(fake))
    assert torch.allclose(gan.generator_loss(fake, kind="saturating"), expected, rtol=1e-12, atol=1e-12)
    # that is E[log(1 - D(G(z)))] with D = sigmoid(logit)
    direct = torch.log1p(-torch.sigmoid(fake)).mean()
    assert torch.allclose(gan.generator_loss(fake, kind="saturating"), direct, rtol=1e-9)


def test_losses_are_finite_for_huge_logits():
    big = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=torch.float64)
    for value in (gan.discriminator_loss(big, big), gan.generator_loss(big),
                  gan.generator_loss(big, kind="saturating")):
        assert torch.isfinite(value)
    # exact values at a confident discriminator: -log sigmoid(1e4) = 0, -log(1 - sigmoid(1e4)) = 1e4
    assert gan.discriminator_loss(torch.tensor([1e4]), torch.tensor([-1e4])).item() == pytest.approx(0.0, abs=1e-12)
    assert gan.generator_loss(torch.tensor([-1e4])).item() == pytest.approx(1e4)


# ---------------------------------------------------------------- gradients with respect to the logits
def _grad(fn, a):
    a = a.clone().requires_grad_(True)
    fn(a).backward()
    return a.grad


def test_generator_loss_gradients_have_closed_forms():
    a = _logits(32, 6)
    n = a.numel()
    g_ns = _grad(lambda t: gan.generator_loss(t, kind="nonsaturating"), a)
    g_s = _grad(lambda t: gan.generator_loss(t, kind="saturating"), a)
    assert torch.allclose(g_ns, (torch.sigmoid(a) - 1) / n, rtol=1e-10, atol=1e-14)
    assert torch.allclose(g_s, -torch.sigmoid(a) / n, rtol=1e-10, atol=1e-14)


def test_discriminator_loss_gradients_have_closed_forms():
    real, fake = _logits(20, 7), _logits(10, 8)
    r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    gan.discriminator_loss(r, f).backward()
    assert torch.allclose(r.grad, (torch.sigmoid(real) - 1) / 20, rtol=1e-10, atol=1e-14)
    assert torch.allclose(f.grad, torch.sigmoid(fake) / 10, rtol=1e-10, atol=1e-14)


def test_saturating_gradient_vanishes_when_discriminator_rejects_fakes_nonsaturating_does_not():
    # D(G(z)) = sigmoid(a) -> 0 as a -> -inf
    a = torch.tensor([-2.0, -6.0, -12.0], dtype=torch.float64)
    g_s = _grad(lambda t: gan.generator_loss(t, kind="saturating"), a).abs() * a.numel()
    g_ns = _grad(lambda t: gan.generator_loss(t, kind="nonsaturating"), a).abs() * a.numel()
    assert g_s[-1] < 1e-5 and torch.all(g_s[1:] < g_s[:-1])     # shrinks like D(G(z))
    assert torch.all(g_ns > 0.88) and g_ns[-1] > 0.99999           # tends to 1
    assert torch.all(g_ns > 10 * g_s[1:].max())


# ---------------------------------------------------------------- pack
def test_pack_puts_consecutive_samples_side_by_side():
    x = torch.arange(12.0).reshape(6, 2)      # rows (0,1), (2,3), ...
    p = gan.pack(x, 2)
    assert p.shape == (3, 4)
    assert p.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    p3 = gan.pack(x, 3)
    assert p3.shape == (2, 6) and p3[1].tolist() == [6, 7, 8, 9, 10, 11]
    assert torch.equal(gan.pack(x, 1), x)


def test_pack_keeps_leading_seed_dimension_and_gradients():
    x = torch.randn(3, 8, 2, requires_grad=True)
    p = gan.pack(x, 4)
    assert p.shape == (3, 2, 8)
    assert torch.equal(p[1, 1, 2:4], x[1, 5])
    p.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("m", [0, -1, 2.0, True])
def test_pack_rejects_bad_m(m):
    with pytest.raises(ValueError, match="m"):
        gan.pack(torch.zeros(4, 2), m)


def test_pack_rejects_indivisible_batch_and_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        gan.pack(torch.zeros(5, 2), 2)
    with pytest.raises(ValueError, match="shape"):
        gan.pack(torch.zeros(6), 2)


# ---------------------------------------------------------------- bad input to the losses
def test_losses_reject_bad_input():
    ok = torch.zeros(4)
    with pytest.raises(ValueError, match="kind"):
        gan.generator_loss(ok, kind="wasserstein")
    with pytest.raises(ValueError, match="NaN"):
        gan.discriminator_loss(torch.tensor([0.0, float("nan")]), ok)
    with pytest.raises(ValueError, match="empty"):
        gan.generator_loss(torch.zeros(0))
    with pytest.raises(ValueError, match="floating"):
        gan.discriminator_loss(ok, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="Tensor"):
        gan.generator_loss([0.0, 1.0])


# ---------------------------------------------------------------- batched MLPs
def test_batched_mlp_matches_one_linear_stack_per_model():
    bm = gan.BatchedMLP([3, 5, 2], seeds=[0, 1])
    x = torch.randn(2, 7, 3)
    out = bm(x)
    assert out.shape == (2, 7, 2)
    for s in range(2):
        net = gan.mlp([3, 5, 2])
        with torch.no_grad():   # nn.Linear stores W transposed: weight = W^T
            net[0].weight.copy_(bm.weights[0][s].T)
            net[0].bias.copy_(bm.biases[0][s, 0])
            net[2].weight.copy_(bm.weights[1][s].T)
            net[2].bias.copy_(bm.biases[1][s, 0])
        assert torch.allclose(out[s], net(x[s]), atol=1e-6)


def test_batched_mlp_model_depends_only_on_its_own_seed():
    a = gan.BatchedMLP([4, 6, 1], seeds=[7, 3])
    b = gan.BatchedMLP([4, 6, 1], seeds=[3])
    assert torch.equal(a.weights[0][1], b.weights[0][0])
    assert not torch.equal(a.weights[0][0], a.weights[0][1])
    with pytest.raises(ValueError, match="shape"):
        a(torch.zeros(3, 5, 4))
    with pytest.raises(ValueError, match="sizes"):
        gan.BatchedMLP([4], seeds=[0])


def test_batched_mlp_initialises_like_nn_linear():
    """Uniform in +-1/sqrt(d_in), as the docstring says: bounded, and filling the interval (std = bound/sqrt 3)."""
    bm = gan.BatchedMLP([256, 128, 2], seeds=[0, 1])
    for W, b, d_in in zip(bm.weights, bm.biases, (256, 128)):
        bound = d_in ** -0.5
        for t in (W, b):
            assert t.abs().max() <= bound
        assert W.abs().max() > 0.95 * bound
        assert abs(W.std().item() - bound / 3 ** 0.5) < 0.05 * bound


# ---------------------------------------------------------------- error messages name the culprit; edge sizes
def test_error_messages_name_the_argument_and_the_type():
    ok = torch.zeros(4)
    with pytest.raises(ValueError, match=r"^d_real_logits contains NaN"):
        gan.discriminator_loss(torch.tensor([0.0, float("nan")]), ok)
    with pytest.raises(ValueError, match=r"^d_fake_logits must be a floating-point"):
        gan.discriminator_loss(ok, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^d_fake_logits must not be empty"):
        gan.generator_loss(torch.zeros(0))
    with pytest.raises(ValueError, match=r"^d_fake_logits must be a torch\.Tensor of logits, got list$"):
        gan.generator_loss([0.0, 1.0])
    with pytest.raises(ValueError, match=r"^x must be a torch\.Tensor, got list$"):
        gan.pack([[0.0, 1.0]], 1)


def test_batched_mlp_and_mlp_validate_sizes_and_seeds():
    one = gan.BatchedMLP([3, 2], seeds=[0])            # two sizes = a single linear layer
    assert len(one.weights) == 1 and one(torch.zeros(1, 5, 3)).shape == (1, 5, 2)
    assert len(gan.mlp([3, 2])) == 1 and isinstance(gan.mlp([3, 2])[0], nn.Linear)
    assert gan.mlp([1, 1])(torch.ones(4, 1)).shape == (4, 1) and gan.BatchedMLP([1, 1], seeds=[0]).sizes == [1, 1]
    for bad in ([4], [3, 2.0], [3, True], [3, 0]):
        with pytest.raises(ValueError, match=r"^sizes must list at least two positive integers"):
            gan.BatchedMLP(bad, seeds=[0])
        with pytest.raises(ValueError, match=r"^sizes must list at least two positive integers"):
            gan.mlp(bad)
    with pytest.raises(ValueError, match=r"^seeds must name at least one model$"):
        gan.BatchedMLP([3, 2], seeds=[])
    with pytest.raises(ValueError, match=r"expected input of shape \(2, N, 4\), got \(3, 5, 4\)"):
        gan.BatchedMLP([4, 6, 1], seeds=[7, 3])(torch.zeros(3, 5, 4))


def test_batched_mlp_biases_come_from_the_seed_and_fill_the_interval():
    a = gan.BatchedMLP([4, 6, 1], seeds=[7, 3])
    b = gan.BatchedMLP([4, 6, 1], seeds=[3])
    for l in range(2):
        assert torch.equal(a.weights[l][1], b.weights[l][0]) and torch.equal(a.biases[l][1], b.biases[l][0])
    bm = gan.BatchedMLP([256, 512, 2], seeds=[0, 1])
    bound = 256 ** -0.5
    b0 = bm.biases[0]                                   # 1024 biases uniform in +-bound
    assert b0.abs().max() <= bound and b0.max() > 0.9 * bound and b0.min() < -0.9 * bound
    assert abs(b0.mean().item()) < 0.1 * bound
