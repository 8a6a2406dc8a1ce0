"""Tests for dlcore.models.lenet: shapes, parameter counts, input checks, determinism, and that it learns."""
import re

import pytest
import torch
import torch.nn.functional as F

from dlcore import device
from dlcore.models.lenet import CNN1D, LeNet, random_shift


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_lenet_output_shape():
    assert LeNet()(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    assert LeNet(num_classes=3, channels=(4, 4, 8), hidden=16)(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_lenet_parameter_count_matches_hand_count():
    # conv 1->32, 32->32, 32->64 (3x3 + bias), fc 64*2*2 -> 128 -> 10
    expected = (9 * 1 * 32 + 32) + (9 * 32 * 32 + 32) + (9 * 32 * 64 + 64) + (256 * 128 + 128) + (128 * 10 + 10)
    assert n_params(LeNet()) == expected == 62250


@pytest.mark.parametrize("shape", [(64, 64), (2, 3, 8, 8), (2, 1, 28, 28), (2, 8, 8)])
def test_lenet_rejects_wrong_shape_with_clear_message(shape):
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 1, 8, 8\), got " + re_tuple(shape)):
        LeNet()(torch.zeros(shape))


def re_tuple(shape) -> str:
    return re.escape(str(tuple(shape)))


def test_lenet_rejects_bad_channels():
    with pytest.raises(ValueError, match="three positive widths"):
        LeNet(channels=(8, 8))


def test_cnn1d_accepts_both_layouts_and_agrees():
    torch.manual_seed(0)
    model = CNN1D()
    x = torch.randn(4, 40)
    out2, out3 = model(x), model(x[:, None, :])
    assert out2.shape == out3.shape == (4, 10)
    torch.testing.assert_close(out2, out3)


def test_cnn1d_lengths_and_parameter_count():
    model = CNN1D()
    assert model.out_length == 5            # 40 -> 19 -> 10 -> 5
    expected = (5 * 1 * 25 + 25) + 2 * (3 * 25 * 25 + 25) + (125 * 10 + 10)
    assert n_params(model) == expected == 5210
    # batch norm adds a scale and a shift per channel
    assert n_params(CNN1D(batch_norm=True)) == expected + 3 * 2 * 25


@pytest.mark.parametrize("shape", [(4, 39), (4, 2, 40), (4, 1, 1, 40), (40,)])
def test_cnn1d_rejects_wrong_shape_with_clear_message(shape):
    msg = r"expected input of shape \(batch, 40\) or \(batch, 1, 40\), got " + re_tuple(shape)
    with pytest.raises(ValueError, match=msg):
        CNN1D()(torch.zeros(shape))


def test_cnn1d_rejects_signal_that_shrinks_to_nothing():
    with pytest.raises(ValueError, match="shrinks to nothing"):
        CNN1D(length=4, channels=(4, 4), kernel_sizes=(5, 5))


@pytest.mark.parametrize("make, shape", [(LeNet, (3, 1, 8, 8)), (lambda: CNN1D(batch_norm=True), (3, 40))])
def test_same_seed_same_model_same_output(make, shape):
    outs = []
    for _ in range(2):
        device.seed_everything(7)
        model = make().eval()
        outs.append(model(torch.ones(shape)))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    device.seed_everything(8)
    assert not torch.equal(make().eval()(torch.ones(shape)), outs[0])


@pytest.mark.parametrize("make, shape", [(LeNet, (32, 1, 8, 8)), (CNN1D, (32, 40))])
def test_tiny_overfit_loss_falls(make, shape):
    device.seed_everything(0)
    model = make()
    gen = device.make_generator(0)
    x, y = torch.randn(shape, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = F.cross_entropy(model(x), y).item()
    for _ in range(150):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    assert (model(x).argmax(1) == y).float().mean().item() == 1.0


def test_random_shift_moves_each_image_by_at_most_one_pixel():
    gen = device.make_generator(0)
    x = torch.zeros(200, 1, 8, 8)
    x[:, :, 3, 4] = 1.0
    out = random_shift(x, 1, gen)
    assert out.shape == x.shape
    pos = out[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert out.sum().item() == 200                        # an interior pixel is never cut off
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {3, 4, 5}
    assert torch.equal(random_shift(x, 0), x)


def test_random_shift_zero_fills_border():
    out = random_shift(torch.ones(100, 2, 8, 8), 1, device.make_generator(1))
    assert out.min().item() == 0.0 and out.max().item() == 1.0
    assert torch.equal(out[:, 0], out[:, 1])             # all channels of one image move together
    with pytest.raises(ValueError, match="expected images"):
        random_shift(torch.ones(8, 8))


def test_layer_sequences_match_the_documented_architectures():
    # the notebook indexes these Sequentials (features[0], features[:2], features[:4]): keep the order fixed
    lenet = LeNet()
    kinds = [type(m).__name__ for m in list(lenet.features) + list(lenet.classifier)]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                     "Flatten", "Linear", "ReLU", "Linear"]
    assert [type(m).__name__ for m in CNN1D(batch_norm=True).features] == ["Conv1d", "BatchNorm1d", "ReLU"] * 3
    assert [type(m).__name__ for m in CNN1D().features] == ["Conv1d", "ReLU"] * 3
    assert all(m.stride == (2,) and m.padding == (1,) for m in CNN1D().features if isinstance(m, torch.nn.Conv1d))


def test_lenet_accepts_the_smallest_sizes_and_rejects_zero():
    assert LeNet(num_classes=1, channels=(1, 1, 1), hidden=1)(torch.zeros(2, 1, 8, 8)).shape == (2, 1)
    with pytest.raises(ValueError, match=r"num_classes and hidden must be >= 1, got 0 and 128"):
        LeNet(num_classes=0)
    with pytest.raises(ValueError, match=r"num_classes and hidden must be >= 1, got 10 and 0"):
        LeNet(hidden=0)
    with pytest.raises(ValueError, match=r"channels must be three positive widths, got \(4, 0, 4\)"):
        LeNet(channels=(4, 0, 4))


def test_lenet_convolutions_keep_the_size_and_poolings_halve_it():
    lenet = LeNet()
    x = torch.zeros(2, 1, 8, 8)
    sizes = [tuple(lenet.features[:i](x).shape[2:]) for i in (1, 3, 5, 6, 8)]
    assert sizes == [(8, 8), (8, 8), (4, 4), (4, 4), (2, 2)]


def test_cnn1d_accepts_the_smallest_settings():
    model = CNN1D(num_classes=1, channels=(2,), kernel_sizes=(3,), stride=1, length=1)
    assert model.out_length == 1                           # (1 + 2 - 3) // 1 + 1: one position is enough
    assert model(torch.zeros(3, 1)).shape == (3, 1)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(channels=(), kernel_sizes=()), r"must be non-empty and of equal length, got \(\) and \(\)"),
    (dict(channels=(4, 4), kernel_sizes=(3,)), r"must be non-empty and of equal length, got \(4, 4\) and \(3,\)"),
    (dict(stride=0), r"stride, length and num_classes must be >= 1, got 0, 40, 10"),
    (dict(length=0), r"stride, length and num_classes must be >= 1, got 2, 0, 10"),
    (dict(num_classes=0), r"stride, length and num_classes must be >= 1, got 2, 40, 0"),
    (dict(length=2), r"length 2 shrinks to nothing after kernel 5: use fewer layers, smaller kernels or a smaller"),
])
def test_cnn1d_rejects_bad_arguments_with_clear_message(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        CNN1D(**kwargs)


def test_random_shift_defaults_to_one_pixel_and_rejects_a_negative_shift():
    x = torch.zeros(200, 1, 8, 8)
    x[:, :, 3, 4] = 1.0
    torch.manual_seed(0)
    pos = random_shift(x)[:, 0].flatten(1).argmax(1)
    assert set((pos // 8).tolist()) == {2, 3, 4} and set((pos % 8).tolist()) == {3, 4, 5}
    with pytest.raises(ValueError, match=r"max_shift must be >= 0, got -1"):
        random_shift(x, -1)


def test_random_shift_is_reproducible_from_its_generator():
    x = torch.randn(50, 1, 8, 8)
    a = random_shift(x, 2, device.make_generator(3))
    b = random_shift(x, 2, device.make_generator(3))
    assert torch.equal(a, b)
