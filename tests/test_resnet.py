"""Tests for dlcore.models.resnet: shapes, parameter counts, the residual flag, gradients, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from dlcore.models.resnet import ResidualBlock, ResNet


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("shape", [(5, 40), (5, 1, 40)])
def test_resnet_1d_output_shape(shape):
    torch.manual_seed(0)
    model = ResNet(1, 10, widths=(8, 16), blocks_per_stage=1, dim=1)
    assert model(torch.randn(*shape)).shape == (5, 10)


def test_resnet_2d_output_shape_and_features():
    torch.manual_seed(0)
    model = ResNet(3, 7, widths=(8, 16, 32), blocks_per_stage=(1, 2, 1), dim=2)
    x = torch.randn(4, 3, 32, 32)
    assert model(x).shape == (4, 7)
    assert model.features(x).shape == (4, 32)
    assert len(model.stages[1]) == 2


def test_block_halves_the_length_with_stride_2():
    block = ResidualBlock(8, 16, stride=2, dim=1)
    assert block(torch.randn(2, 8, 40)).shape == (2, 16, 20)
    same_width = ResidualBlock(8, 8, stride=2, dim=1)                 # stride alone needs a projection too
    assert not isinstance(same_width.shortcut, nn.Identity)
    assert same_width(torch.randn(2, 8, 40)).shape == (2, 8, 20)
    block2d = ResidualBlock(8, 16, stride=2, dim=2)
    assert block2d(torch.randn(2, 8, 9, 9)).shape == (2, 16, 5, 5)


def test_block_parameter_counts():
    c = 16
    bn = 2 * c  # gamma and beta per channel
    identity = ResidualBlock(c, dim=2)
    assert isinstance(identity.shortcut, nn.Identity)
    assert n_params(identity) == 2 * (9 * c * c + bn)                    # two bias-free 3x3 convs + batch norms
    proj = ResidualBlock(c, 2 * c, stride=2, dim=1)
    main = 3 * c * 2 * c + 2 * (2 * c) + 3 * (2 * c) * (2 * c) + 2 * (2 * c)
    shortcut = c * 2 * c + 2 * (2 * c)                                   # 1x1 projection + batch norm
    assert n_params(proj) == main + shortcut


def test_resnet_parameter_count():
    model = ResNet(1, 10, widths=(4, 8), blocks_per_stage=1, dim=1)
    stem = 3 * 1 * 4 + 2 * 4
    stage1 = 2 * (3 * 4 * 4 + 2 * 4)
    stage2 = (3 * 4 * 8 + 2 * 8) + (3 * 8 * 8 + 2 * 8) + (4 * 8 + 2 * 8)
    head = 8 * 10 + 10
    assert n_params(model) == stem + stage1 + stage2 + head


def test_residual_flag_changes_only_the_skip():
    torch.manual_seed(0)
    res = ResidualBlock(8, dim=1, residual=True).eval()
    plain = ResidualBlock(8, dim=1, residual=False).eval()
    assert plain.shortcut is None
    plain.load_state_dict(res.state_dict())                # identical main path, nothing else to load
    x = torch.randn(3, 8, 20)
    main = res.f2(torch.relu(res.f1(x)))
    assert torch.allclose(res(x), torch.relu(main + x), atol=1e-6)
    assert torch.allclose(plain(x), torch.relu(main), atol=1e-6)
    # a projection block: the plain one lacks exactly the projection's parameters
    res_p, plain_p = ResidualBlock(8, 16, stride=2, residual=True), ResidualBlock(8, 16, stride=2, residual=False)
    assert n_params(res_p) - n_params(plain_p) == n_params(res_p.shortcut)
    # whole networks: same depth, same main-path parameter names
    deep_res = ResNet(1, 10, widths=(8,), blocks_per_stage=4, dim=1, residual=True)
    deep_plain = ResNet(1, 10, widths=(8,), blocks_per_stage=4, dim=1, residual=False)
    assert set(deep_res.state_dict()) == set(deep_plain.state_dict())
    assert n_params(deep_res) == n_params(deep_plain)      # identity shortcuts only: no extra parameters


def test_block_with_zero_last_batchnorm_scale_is_the_identity_on_nonnegative_inputs():
    block = ResidualBlock(4, dim=1).eval()
    nn.init.zeros_(block.f2[1].weight)                    # gamma = 0, beta = 0: F(x) = 0
    x = torch.rand(2, 4, 10)
    assert torch.allclose(block(x), x)


@pytest.mark.parametrize("residual", [True, False])
def test_gradient_reaches_the_first_layer(residual):
    torch.manual_seed(0)
    model = ResNet(1, 10, widths=(8, 16), blocks_per_stage=3, dim=1, residual=residual)
    loss = nn.functional.cross_entropy(model(torch.randn(16, 40)), torch.randint(0, 10, (16,)))
    loss.backward()
    g = model.stem[0][0].weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.parametrize("bad, msg", [
    (torch.randn(2, 3, 40), r"expected input of shape \(batch, 1, length\), got \(2, 3, 40\)"),
    (torch.randn(2, 1, 1, 40), r"got \(2, 1, 1, 40\)"),
])
def test_resnet_1d_rejects_wrong_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        ResNet(1, 10, widths=(4,), blocks_per_stage=1, dim=1)(bad)


def test_resnet_2d_rejects_wrong_channels_and_flat_images():
    model = ResNet(3, 10, widths=(4,), blocks_per_stage=1, dim=2)
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\), got \(2, 1, 8, 8\)"):
        model(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"got \(2, 192\)"):
        model(torch.randn(2, 192))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4, height, width\)"):
        ResidualBlock(4)(torch.randn(2, 5, 8, 8))


@pytest.mark.parametrize("kwargs, msg", [
    (dict(dim=3), "dim must be 1"),
    (dict(widths=()), "at least one stage"),
    (dict(widths=(4, 0)), "every width"),
    (dict(widths=(4, 8), blocks_per_stage=(1,)), "1 entries but widths has 2"),
    (dict(blocks_per_stage=0), "blocks per stage"),
])
def test_resnet_rejects_bad_arguments(kwargs, msg):
    args = dict(in_channels=1, num_classes=10, widths=(4,), blocks_per_stage=1, dim=1) | kwargs
    with pytest.raises(ValueError, match=msg):
        ResNet(**args)


def test_block_rejects_bad_stride():
    with pytest.raises(ValueError, match="stride"):
        ResidualBlock(4, stride=0)


def test_channels_last_input_gives_the_same_output():
    torch.manual_seed(0)
    model = ResNet(3, 5, widths=(8, 16), blocks_per_stage=1, dim=2).eval()
    x = torch.randn(2, 3, 16, 16)
    expected = model(x)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, expected, atol=1e-5)


def test_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = ResNet(1, 3, widths=(8,), blocks_per_stage=2, dim=1)
    x, y = torch.randn(32, 1, 20), torch.randint(0, 3, (32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    first = None
    for _ in range(20):
        loss = nn.functional.cross_entropy(model(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first


def test_every_stage_after_the_first_halves_the_spatial_size():
    model = ResNet(1, 10, widths=(4, 8, 16), blocks_per_stage=1, dim=1)
    assert model.stages(model.stem(torch.randn(2, 1, 40))).shape == (2, 16, 10)
    model2d = ResNet(3, 10, widths=(4, 8), blocks_per_stage=2, dim=2)
    assert model2d.stages(model2d.stem(torch.randn(2, 3, 16, 12))).shape == (2, 8, 8, 6)


def test_conv_bn_defaults_and_same_padding():
    from dlcore.models.resnet import conv_bn
    layer = conv_bn(2, 4, 3)                                           # stride 1, 2-D by default
    assert isinstance(layer[0], nn.Conv2d) and layer[0].stride == (1, 1) and layer[0].bias is None
    assert layer(torch.randn(2, 2, 7, 9)).shape == (2, 4, 7, 9)
    assert conv_bn(2, 4, 5, dim=1)(torch.randn(2, 2, 11)).shape == (2, 4, 11)   # 'same' for any odd kernel


def test_resnet_defaults_are_2d_with_widths_16_32_64_and_two_blocks_per_stage():
    model = ResNet(3, 10)
    assert model.dim == 2 and model.widths == (16, 32, 64) and model.blocks_per_stage == (2, 2, 2)
    assert [len(s) for s in model.stages] == [2, 2, 2] and model.residual is True
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_the_stem_ends_in_a_relu():
    torch.manual_seed(0)
    model = ResNet(1, 10, widths=(4,), blocks_per_stage=1, dim=1)
    assert model.stem(torch.randn(4, 1, 20)).min() >= 0


@pytest.mark.parametrize("residual", [True, False])
def test_the_residual_flag_reaches_every_block(residual):
    model = ResNet(1, 10, widths=(4, 8), blocks_per_stage=3, dim=1, residual=residual)
    blocks = [b for stage in model.stages for b in stage]
    assert model.residual is residual and len(blocks) == 6
    assert all(b.residual is residual and (b.shortcut is not None) is residual for b in blocks)


@pytest.mark.parametrize("make, msg", [
    (lambda: ResidualBlock(0), r"^in_channels must be a positive integer, got 0$"),
    (lambda: ResidualBlock(4, 0), r"^out_channels must be a positive integer, got 0$"),
    (lambda: ResidualBlock(4, stride=0), r"^stride must be a positive integer, got 0$"),
    (lambda: ResidualBlock(4, stride=True), r"^stride must be a positive integer, got True$"),
    (lambda: ResidualBlock(4, stride=1.0), r"^stride must be a positive integer, got 1.0$"),
    (lambda: ResNet(0, 10), r"^in_channels must be a positive integer, got 0$"),
    (lambda: ResNet(1, 0), r"^num_classes must be a positive integer, got 0$"),
    (lambda: ResNet(1, 10, widths=()), r"^widths must name at least one stage, e.g. widths=\(16, 32\)$"),
    (lambda: ResNet(1, 10, widths=(4, 0)), r"^every width must be a positive integer, got 0$"),
    (lambda: ResNet(1, 10, blocks_per_stage=0), r"^blocks per stage must be a positive integer, got 0$"),
])
def test_bad_arguments_raise_a_value_error_that_names_the_argument(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()
