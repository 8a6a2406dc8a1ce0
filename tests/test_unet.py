"""Tests for dlcore.models.unet: shapes, conditioning, skip connections, parameter counts, clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcore.diffusion import TimeEmbedding
from dlcore.models.unet import ResBlock, UNet, _norm, count_parameters


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _randomize_output(model: UNet, seed: int = 0) -> UNet:
    """The output convolution starts at zero; give it weights so that the output depends on the input."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.out.weight.copy_(0.1 * torch.randn(model.out.weight.shape, generator=g))
        model.out.bias.copy_(0.1 * torch.randn(model.out.bias.shape, generator=g))
    return model


@pytest.mark.parametrize("mults,size,channels", [((1, 2), 8, 1), ((1, 2, 2), 8, 1), ((1,), 5, 3), ((1, 2), 16, 3)])
def test_unet_output_has_the_input_shape(mults, size, channels):
    torch.manual_seed(0)
    model = UNet(in_channels=channels, base=8, channel_mults=mults, time_dim=16, image_size=size)
    x = torch.randn(3, channels, size, size)
    assert model(x, torch.tensor([0, 5, 99])).shape == x.shape


def test_untrained_unet_predicts_zero_noise():
    model = UNet(base=8, time_dim=16)
    out = model(torch.randn(4, 1, 8, 8), torch.arange(4))
    assert torch.equal(out, torch.zeros_like(out))


def test_downsampling_levels_reach_the_expected_resolutions():
    model = UNet(base=8, channel_mults=(1, 2, 4), time_dim=16, image_size=8)
    seen = []
    for block in model.down:
        block.register_forward_hook(lambda m, inp, out: seen.append(tuple(out.shape[1:])))
    model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]))
    assert seen == [(8, 8, 8), (16, 4, 4), (32, 2, 2)]


def test_time_embedding_is_the_diffusion_modules():
    model = UNet(base=8, time_dim=16)
    assert isinstance(model.time_embed, TimeEmbedding) and model.time_embed.dim == 16


def test_time_embedding_changes_the_output():
    torch.manual_seed(0)
    model = _randomize_output(UNet(base=8, time_dim=16))
    x = torch.randn(1, 1, 8, 8).repeat(2, 1, 1, 1)
    out = model(x, torch.tensor([1, 80]))
    assert (out[0] - out[1]).abs().max() > 1e-3
    same = model(x, torch.tensor([7, 7]))
    assert torch.allclose(same[0], same[1], atol=1e-6)


def test_class_embedding_changes_the_output_and_none_means_null_class():
    torch.manual_seed(0)
    model = _randomize_output(UNet(base=8, time_dim=16, num_classes=10))
    assert model.null_class == 10 and model.label_embed.num_embeddings == 11
    x = torch.randn(1, 1, 8, 8).repeat(3, 1, 1, 1)
    t = torch.tensor([20, 20, 20])
    out = model(x, t, torch.tensor([2, 7, 10]))
    assert (out[0] - out[1]).abs().max() > 1e-3
    assert (out[0] - out[2]).abs().max() > 1e-3
    unconditional = model(x, t)                                       # y=None: the null class for everyone
    assert torch.allclose(unconditional, model(x, t, torch.full((3,), 10)), atol=1e-6)


def test_skip_connections_carry_the_down_path_to_the_up_path():
    """Each up block sees [upsampled coarse features, the down block's output at its resolution]."""
    torch.manual_seed(0)
    model = UNet(base=8, channel_mults=(1, 2, 2), time_dim=16)
    down_out, up_in = {}, {}
    for i, block in enumerate(model.down):
        block.register_forward_hook(lambda m, inp, out, i=i: down_out.__setitem__(i, out))
    for i, block in enumerate(model.up):
        block.register_forward_hook(lambda m, inp, out, i=i: up_in.__setitem__(i, inp[0]))
    model(torch.randn(2, 1, 8, 8), torch.tensor([3, 4]))
    for i, c in enumerate(model.channels):
        assert up_in[i].shape[1] == (model.channels[i + 1] if i + 1 < len(model.channels) else c) + c
        assert torch.equal(up_in[i][:, -c:], down_out[i])             # the skip, concatenated unchanged


def test_resblock_parameter_count():
    cin, cout, e = 8, 16, 12
    block = ResBlock(cin, cout, e)
    norms = 2 * cin + 2 * cout
    convs = (9 * cin * cout + cout) + (9 * cout * cout + cout)
    proj = e * cout + cout
    skip = cin * cout + cout                                          # 1x1 convolution, channels change
    assert n_params(block) == norms + convs + proj + skip
    same = ResBlock(cout, cout, e)
    assert isinstance(same.skip, nn.Identity)
    assert n_params(same) == 4 * cout + 2 * (9 * cout * cout + cout) + e * cout + cout


def test_unet_parameter_count_formula():
    b, e, k = 8, 16, 10
    c0, c1 = b, 2 * b

    def block(ci, co):
        return 2 * ci + 2 * co + 9 * ci * co + co + 9 * co * co + co + e * co + co + (0 if ci == co else ci * co + co)

    expected = (2 * (e * e + e)                                          # time MLP
                + (k + 1) * e                                            # label table incl. null class
                + 9 * c0 + c0                                            # stem
                + block(c0, c0) + block(c0, c1)                          # down
                + 9 * c0 * c0 + c0                                       # downsample
                + block(c1, c1)                                          # middle
                + block(2 * c1, c1) + block(c1 + c0, c0)                 # up, with skips concatenated
                + 9 * c1 * c1 + c1                                       # upsample convolution
                + 2 * c0 + 9 * c0 + 1)                                   # output norm and convolution
    model = UNet(base=b, time_dim=e, num_classes=k)
    assert n_params(model) == count_parameters(model) == expected
    assert n_params(UNet(base=b, time_dim=e)) == expected - (k + 1) * e


@pytest.mark.parametrize("shape", [(2, 1, 16, 16), (2, 3, 8, 8), (2, 64), (2, 1, 8, 7), (2, 1, 7, 8)])
def test_wrong_image_shape_is_a_clear_error(shape):
    model = UNet(base=8, time_dim=16)
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, 1, 8, 8\)"):
        model(torch.randn(*shape), torch.tensor([0, 1]))


def test_image_size_not_divisible_is_a_clear_error():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*2 = 4"):
        UNet(channel_mults=(1, 2, 2), image_size=6)
    with pytest.raises(ValueError, match="divisible"):
        UNet(channel_mults=(1, 2), image_size=7)
    UNet(channel_mults=(1, 2), image_size=6)                            # 6 -> 3 is fine


@pytest.mark.parametrize("bad,message", [
    ({"base": 0}, "base must be a positive integer, got 0"),
    ({"base": True}, "base must be a positive integer, got True"),           # a bool is not a width
    ({"time_dim": -1}, "time_dim must be a positive integer, got -1"),
    ({"time_dim": 15}, r"time_dim must be even \(sines and cosines in pairs\), got 15"),
    ({"image_size": 0}, "image_size must be a positive integer, got 0"),
    ({"channel_mults": ()}, r"^channel_mults must name at least one level, e\.g\. channel_mults=\(1, 2\)$"),
    ({"channel_mults": (1, 0)}, "every channel multiplier must be a positive integer, got 0"),
    ({"num_classes": 0}, "num_classes must be a positive integer, got 0"),
    ({"in_channels": 1.5}, "in_channels must be a positive integer, got 1.5"),
    ({"in_channels": 2.0}, "in_channels must be a positive integer, got 2.0")])
def test_bad_constructor_arguments(bad, message):
    with pytest.raises(ValueError, match=message):
        UNet(**bad)


def test_default_constructor_arguments():
    model = UNet()
    assert (model.in_channels, model.channels, model.time_dim, model.image_size) == (1, (32, 64), 64, 8)
    assert model.num_classes is None and model.label_embed is None and model.null_class is None
    assert UNet(base=8, time_dim=16).time_dim == 16


@pytest.mark.parametrize("channels,groups", [(16, 8), (32, 8), (24, 8), (12, 4), (6, 2), (3, 1), (1, 1),
                                             (8, 4), (4, 2), (2, 1)])      # at least 2 channels a group
def test_group_norm_uses_up_to_eight_groups(channels, groups):
    norm = _norm(channels)
    assert isinstance(norm, nn.GroupNorm) and (norm.num_groups, norm.num_channels) == (groups, channels)


@pytest.mark.parametrize("channels", [2, 4, 8, 16])
def test_resblock_embedding_is_not_erased_by_the_norm(channels):
    """The embedding shifts each channel by a constant; a one-channel group norm would subtract it right away."""
    torch.manual_seed(0)
    block = ResBlock(channels, channels, 4)
    x = torch.randn(1, channels, 4, 4).repeat(2, 1, 1, 1)
    out = block(x, torch.randn(2, 4))
    assert (out[0] - out[1]).abs().max() > 1e-3


def test_resblock_matches_its_formula():
    """skip(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x))) + proj(emb)))), written out with plain functions."""
    torch.manual_seed(0)
    x, emb = torch.randn(2, 4, 5, 5), torch.randn(2, 6)
    for block in (ResBlock(4, 8, 6), ResBlock(4, 4, 6)):
        def gn(norm, h):
            return F.group_norm(h, norm.num_groups, norm.weight, norm.bias, norm.eps)

        h = F.conv2d(F.silu(gn(block.norm1, x)), block.conv1.weight, block.conv1.bias, padding=1)
        h = h + (emb @ block.emb_proj.weight.T + block.emb_proj.bias)[:, :, None, None]
        h = F.conv2d(F.silu(gn(block.norm2, h)), block.conv2.weight, block.conv2.bias, padding=1)
        skip = x if block.in_channels == block.out_channels else F.conv2d(x, block.skip.weight, block.skip.bias)
        torch.testing.assert_close(block(x, emb), skip + h, atol=1e-5, rtol=1e-5)


def test_labels_out_of_range_are_a_clear_error():
    model = UNet(base=8, time_dim=16, num_classes=10)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"0\.\.10 \(10 = null class\)"):
        model(x, t, torch.tensor([3, 11]))
    with pytest.raises(ValueError, match="labels must lie"):
        model(x, t, torch.tensor([-1, 2]))
    model(x, t, torch.tensor([10, 9]))                                  # the null class is a valid label
    with pytest.raises(ValueError, match="integer labels"):
        model(x, t, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"integer labels y of shape \(2,\), got \(3,\)"):
        model(x, t, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"integer labels y of shape \(2,\), got list"):
        model(x, t, [1, 2])


def test_labels_for_unconditional_model_are_a_clear_error():
    with pytest.raises(ValueError, match=r"^labels y were given but the model is unconditional: "
                                         r"build UNet\(num_classes=\.\.\.\)$"):
        UNet(base=8, time_dim=16)(torch.randn(2, 1, 8, 8), torch.tensor([0, 1]), torch.tensor([0, 1]))


def test_bad_timesteps_are_a_clear_error():
    model = UNet(base=8, time_dim=16)
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"shape \(2,\), one per image, got \(1,\)"):
        model(x, torch.tensor([1]))
    with pytest.raises(ValueError, match=r"shape \(2,\), one per image, got list"):
        model(x, [1, 2])
    with pytest.raises(ValueError, match="integers"):
        model(x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        model(x, torch.tensor([-1, 3]))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = _randomize_output(UNet(base=8, time_dim=16, num_classes=3))
    x = torch.randn(4, 1, 8, 8)
    loss = model(x, torch.tensor([0, 10, 20, 30]), torch.tensor([0, 1, 2, 3])).pow(2).mean()
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_embed_adds_the_label_row_and_none_means_null_class():
    torch.manual_seed(0)
    model = UNet(base=8, time_dim=16, num_classes=4)
    t, y = torch.tensor([3, 50, 7]), torch.tensor([0, 4, 2])
    with torch.no_grad():
        time = model.time_embed(t)
        torch.testing.assert_close(model.embed(t, y), time + model.label_embed.weight[y])
        torch.testing.assert_close(model.embed(t, None), time + model.label_embed.weight[4].expand(3, -1))
        unconditional = UNet(base=8, time_dim=16)
        torch.testing.assert_close(unconditional.embed(t, None), unconditional.time_embed(t))
        torch.testing.assert_close(unconditional.embed(t, y), unconditional.time_embed(t))  # no table: y unused
