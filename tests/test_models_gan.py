"""Tests for dlcore.models.gan: the DCGAN-style generator and discriminator for 8x8 digits."""
import pytest
import torch
from torch import nn

from dlcore.models.gan import Discriminator, Generator, dcgan_init_


def build(cls, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(**kw)


def test_generator_output_shape_and_range():
    g = build(Generator, latent_dim=8, hidden=16)
    z = 10 * torch.randn(7, 8)                       # large noise drives the sigmoid to its ends
    with torch.no_grad():
        x = g(z)
    assert x.shape == (7, 1, 8, 8)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert float(x.std()) > 0                        # not a constant image


def test_discriminator_returns_one_logit_per_image():
    d = build(Discriminator, hidden=16)
    out = d(torch.rand(5, 1, 8, 8))
    assert out.shape == (5,)
    assert torch.isfinite(out).all()
    # logits, not probabilities: no sigmoid at the end, so values outside [0, 1] occur
    d.eval()
    with torch.no_grad():
        big = d(torch.rand(64, 1, 8, 8) * 50)
    assert float(big.min()) < 0.0 or float(big.max()) > 1.0


def test_generator_upsamples_with_transposed_convs_and_batch_norm():
    g = build(Generator, hidden=16)
    kinds = [type(m) for m in g.modules()]
    assert kinds.count(nn.ConvTranspose2d) == 2
    assert nn.BatchNorm2d in kinds and nn.BatchNorm1d in kinds
    assert nn.ReLU in kinds and nn.LeakyReLU not in kinds
    assert not any(k in kinds for k in (nn.MaxPool2d, nn.AvgPool2d))


def test_discriminator_downsamples_with_strided_convs_and_leaky_relu():
    d = build(Discriminator, hidden=16)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(c.stride == (2, 2) for c in convs)
    leaky = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 2 and all(m.negative_slope == pytest.approx(0.2) for m in leaky)
    assert not any(isinstance(m, nn.ReLU) for m in d.modules())
    # no batch norm on the input: the first layer after the first conv is the activation
    assert isinstance(d.net[1], nn.LeakyReLU)


@pytest.mark.parametrize("cls", [Generator, Discriminator])
def test_weights_follow_dcgan_init(cls):
    model = build(cls, hidden=64)
    ws = torch.cat([m.weight.detach().flatten() for m in model.modules()
                    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))])
    assert ws.numel() > 10_000
    assert abs(float(ws.mean())) < 0.002
    assert float(ws.std()) == pytest.approx(0.02, rel=0.05)
    bn = torch.cat([m.weight.detach() for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))])
    assert float(bn.mean()) == pytest.approx(1.0, abs=0.01) and float(bn.std()) == pytest.approx(0.02, rel=0.2)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


def test_dcgan_init_resets_a_default_layer():
    layer = nn.Linear(200, 300)
    dcgan_init_(layer)
    assert float(layer.weight.detach().std()) == pytest.approx(0.02, rel=0.05)
    assert torch.equal(layer.bias, torch.zeros(300))


def test_same_seed_gives_same_model_and_samples():
    g1, g2 = build(Generator, seed=3, hidden=16), build(Generator, seed=3, hidden=16)
    a = g1.sample(6, generator=torch.Generator().manual_seed(5))
    b = g2.sample(6, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    c = g2.sample(6, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)
    g3 = build(Generator, seed=4, hidden=16)
    assert not torch.equal(a, g3.sample(6, generator=torch.Generator().manual_seed(5)))


def test_sample_uses_eval_mode_and_restores_training_mode():
    g = build(Generator, hidden=16)
    g.train()
    x = g.sample(1, generator=torch.Generator().manual_seed(0))   # batch of 1 would fail BN in train mode
    assert x.shape == (1, 1, 8, 8) and g.training
    assert not x.requires_grad


def test_conditional_models_use_the_label():
    g = build(Generator, hidden=16, num_classes=10)
    d = build(Discriminator, hidden=16, num_classes=10)
    g.eval(), d.eval()
    z = torch.randn(4, 32)
    x0 = g(z, torch.zeros(4, dtype=torch.long))
    x3 = g(z, torch.full((4,), 3))
    assert x0.shape == (4, 1, 8, 8) and not torch.allclose(x0, x3)
    l0, l3 = d(x0, torch.zeros(4, dtype=torch.long)), d(x0, torch.full((4,), 3))
    assert l0.shape == (4,) and not torch.allclose(l0, l3)
    s = g.sample(10, y=torch.arange(10), generator=torch.Generator().manual_seed(0))
    assert s.shape == (10, 1, 8, 8)


@pytest.mark.parametrize("cls", [Generator, Discriminator])
@pytest.mark.parametrize("bad", [10, -1, 99])
def test_conditional_label_out_of_range_is_a_clear_error(cls, bad):
    model = build(cls, hidden=8, num_classes=10)
    inp = torch.randn(3, 32) if cls is Generator else torch.rand(3, 1, 8, 8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        model(inp, torch.tensor([0, bad, 1]))


@pytest.mark.parametrize("cls", [Generator, Discriminator])
def test_labels_missing_extra_or_malformed_are_clear_errors(cls):
    inp = torch.randn(3, 32) if cls is Generator else torch.rand(3, 1, 8, 8)
    cond, uncond = build(cls, hidden=8, num_classes=10), build(cls, hidden=8)
    with pytest.raises(ValueError, match="conditional"):
        cond(inp)
    with pytest.raises(ValueError, match="unconditional"):
        uncond(inp, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        cond(inp, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        cond(inp, torch.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("shape", [(4, 64), (4, 1, 16, 16), (4, 3, 8, 8), (1, 8, 8)])
def test_discriminator_wrong_image_size_is_a_clear_error(shape):
    d = build(Discriminator, hidden=8)
    with pytest.raises(ValueError, match=r"expected images of shape \(batch, 1, 8, 8\)"):
        d(torch.rand(*shape))


@pytest.mark.parametrize("shape", [(4, 16), (4, 32, 1), (32,)])
def test_generator_wrong_noise_shape_is_a_clear_error(shape):
    g = build(Generator, hidden=8)
    with pytest.raises(ValueError, match=r"expected noise of shape \(batch, 32\)"):
        g(torch.randn(*shape))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError):
        Generator(latent_dim=0)
    with pytest.raises(ValueError):
        Generator(num_classes=1)
    with pytest.raises(ValueError):
        Discriminator(hidden=0)


def test_a_few_adversarial_steps_move_the_discriminator():
    """Gradients reach every parameter of both networks through the losses of a GAN step."""
    torch.manual_seed(0)
    g, d = Generator(latent_dim=8, hidden=8), Discriminator(hidden=8)
    real = torch.rand(16, 1, 8, 8)
    fake = g(torch.randn(16, 8))
    loss_d = nn.functional.softplus(-d(real)).mean() + nn.functional.softplus(d(fake.detach())).mean()
    loss_d.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    d.zero_grad()
    nn.functional.softplus(-d(fake)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
