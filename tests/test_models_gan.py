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


# ---- added after mutation testing (mutmut): defaults, boundaries, messages, layer stacks and devices ---------

def test_default_sizes():
    g, d = build(Generator), build(Discriminator)
    assert (g.latent_dim, g.hidden, g.num_classes, g.embed) == (32, 64, None, None)
    assert g.project[0].out_features == 2 * 64 * 2 * 2
    assert (d.hidden, d.num_classes, d.embed) == (64, None, None)
    assert d.net[0].out_channels == 64 and d.net[1].negative_slope == pytest.approx(0.2)
    assert build(Generator, num_classes=10).embed.embedding_dim == 16
    assert build(Generator, num_classes=10).project[0].in_features == 32 + 16


def test_smallest_sizes_are_accepted():
    g = build(Generator, latent_dim=1, hidden=1, num_classes=2, embed_dim=1)
    d = build(Discriminator, hidden=1, num_classes=2)
    y = torch.tensor([0, 1, 1])
    x = g(torch.randn(3, 1), y)
    assert x.shape == (3, 1, 8, 8) and d(x, y).shape == (3,)


@pytest.mark.parametrize("kw, match", [
    (dict(latent_dim=0), r"^latent_dim, hidden and embed_dim must be >= 1, got 0, 64, 16$"),
    (dict(hidden=0), r"got 32, 0, 16"),
    (dict(embed_dim=0), r"got 32, 64, 0"),
    (dict(num_classes=1), r"^num_classes must be None \(unconditional\) or >= 2, got 1$"),
])
def test_generator_constructor_errors_name_the_problem(kw, match):
    with pytest.raises(ValueError, match=match):
        Generator(**kw)


@pytest.mark.parametrize("kw, match", [
    (dict(hidden=0), r"^hidden must be >= 1, got 0$"),
    (dict(num_classes=1), r"^num_classes must be None \(unconditional\) or >= 2, got 1$"),
])
def test_discriminator_constructor_errors_name_the_problem(kw, match):
    with pytest.raises(ValueError, match=match):
        Discriminator(**kw)


@pytest.mark.parametrize("cls, who", [(Generator, "generator"), (Discriminator, "discriminator")])
def test_label_errors_name_the_network(cls, who):
    inp = torch.randn(3, 32) if cls is Generator else torch.rand(3, 1, 8, 8)
    with pytest.raises(ValueError, match=rf"^this {who} is conditional \(num_classes=10\)"):
        build(cls, hidden=8, num_classes=10)(inp)
    with pytest.raises(ValueError, match=rf"^this {who} is unconditional \(num_classes=None\)"):
        build(cls, hidden=8)(inp, torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("cls", [Generator, Discriminator])
def test_labels_are_checked_for_a_batch_of_one_and_an_empty_batch_passes(cls):
    model = build(cls, hidden=8, num_classes=10).eval()
    one = torch.randn(1, 32) if cls is Generator else torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\), got values from 10 to 10"):
        model(one, torch.tensor([10]))
    empty = torch.randn(0, 32) if cls is Generator else torch.rand(0, 1, 8, 8)
    out = model(empty, torch.zeros(0, dtype=torch.long))
    assert out.shape == ((0, 1, 8, 8) if cls is Generator else (0,))


def test_generator_layer_stack():
    g = build(Generator, latent_dim=8, hidden=4)
    assert [type(m) for m in g.project] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert [type(m) for m in g.net] == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.ConvTranspose2d, nn.Sigmoid]
    # no bias before a batch norm (it would be cancelled by the mean subtraction); the output layer has one
    assert g.project[0].bias is None and g.net[0].bias is None and g.net[3].bias is not None
    for conv in (g.net[0], g.net[3]):
        assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_discriminator_layer_stack(batch_norm):
    d = build(Discriminator, hidden=4, batch_norm=batch_norm)
    norm = nn.BatchNorm2d if batch_norm else nn.Identity
    assert [type(m) for m in d.net] == [nn.Conv2d, nn.LeakyReLU, nn.Conv2d, norm, nn.LeakyReLU, nn.Flatten,
                                        nn.Linear]
    assert d.net[0].bias is not None
    assert (d.net[2].bias is None) == batch_norm          # a bias only where no batch norm follows
    for conv in (d.net[0], d.net[2]):
        assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))
    feats = d.net[:2](torch.rand(2, 1, 8, 8))
    assert feats.shape == (2, 4, 4, 4)                     # 8 -> 4 -> 2


def test_sample_follows_the_model_to_its_device():
    g = build(Generator, hidden=4).to("meta")            # a second device without a GPU
    s = g.sample(3, generator=torch.Generator().manual_seed(0))
    assert s.device.type == "meta" and s.shape == (3, 1, 8, 8)


def test_sample_is_the_eval_mode_output_on_the_generators_noise():
    g = build(Generator, hidden=8, num_classes=10)
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(2))
    y = [1, 2, 3, 4]
    s = g.sample(4, y=y, generator=torch.Generator().manual_seed(2))
    g.eval()
    with torch.no_grad():
        torch.testing.assert_close(s, g(z, torch.tensor(y)), rtol=0, atol=0)


def test_sample_matches_the_models_dtype():
    g = build(Generator, hidden=4).double()
    s = g.sample(2, generator=torch.Generator().manual_seed(0))
    assert s.dtype == torch.float64
