"""Tests for dlcore.models.vit: shapes, patches, positions and counts of the Vision Transformer."""
import re

import pytest
import torch

from dlcore.models.vit import ViT, param_count, patchify, unpatchify


def small(**kw) -> ViT:
    torch.manual_seed(0)
    args = dict(d_model=16, depth=2, n_heads=2)
    args.update(kw)
    return ViT(**args).double().eval()


def test_output_shapes():
    model = small()
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    assert model(x).shape == (5, 10)
    assert model.tokens(x).shape == (5, 1 + 16, 16)
    maps = model.attention_maps(x)
    assert len(maps) == 2 and maps[0].shape == (5, 2, 17, 17)
    assert torch.allclose(maps[0].sum(-1), torch.ones(5, 2, 17, dtype=torch.float64))


def test_patchify_layout_and_round_trip():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float64).reshape(2, 3, 8, 8)
    p = patchify(x, 4)
    assert p.shape == (2, 4, 3 * 16)
    # patch 1 is the top-right 4x4 block, flattened as (channel, row, column)
    assert torch.equal(p[0, 1], x[0, :, 0:4, 4:8].reshape(-1))
    assert torch.equal(p[1, 2], x[1, :, 4:8, 0:4].reshape(-1))
    assert torch.equal(unpatchify(p, 4, 8, channels=3), x)
    for ps in (1, 2, 8):
        assert torch.equal(unpatchify(patchify(x, ps), ps, 8, channels=3), x)


def permuted_patches(x: torch.Tensor, perm: torch.Tensor, patch: int = 2) -> torch.Tensor:
    return unpatchify(patchify(x, patch)[:, perm], patch, x.shape[-1], x.shape[1])


def test_without_positions_permuting_patches_permutes_token_outputs():
    model = small(pos="none")
    torch.manual_seed(1)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    perm = torch.randperm(16)
    out, out_perm = model.tokens(x), model.tokens(permuted_patches(x, perm))
    assert torch.allclose(out_perm[:, 1:], out[:, 1:][:, perm], atol=1e-10)   # patch tokens: equivariant
    assert torch.allclose(out_perm[:, 0], out[:, 0], atol=1e-10)             # class token: invariant
    assert torch.allclose(model(permuted_patches(x, perm)), model(x), atol=1e-10)


def test_with_positions_permuting_patches_changes_the_outputs():
    model = small()
    torch.manual_seed(1)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    perm = torch.randperm(16)
    out, out_perm = model.tokens(x), model.tokens(permuted_patches(x, perm))
    assert (out_perm[:, 1:] - out[:, 1:][:, perm]).abs().max() > 1e-3
    assert (model(permuted_patches(x, perm)) - model(x)).abs().max() > 1e-4


@pytest.mark.parametrize("kw", [dict(), dict(pos="none"), dict(patch_size=4, d_model=24, depth=3, n_heads=3),
                                dict(image_size=12, patch_size=3, in_channels=3, num_classes=7, mlp_ratio=4),
                                dict(patch_size=1, depth=1)])
def test_param_count_formula_matches_the_model(kw):
    args = dict(d_model=16, depth=2, n_heads=2)
    args.update(kw)
    assert ViT(**args).num_params() == param_count(**{k: v for k, v in args.items() if k != "n_heads"})


def test_default_param_count_by_hand():
    # P = 16 patches of 4 numbers, d = 64, r = 2, L = 4, K = 10
    d = 64
    expected = 4 * d + d + d + 17 * d + 4 * (8 * d * d + 11 * d) + 2 * d + 10 * d + 10
    assert param_count() == expected == ViT().num_params()


def test_wrong_input_shape_is_a_clear_error():
    model = small()
    for bad in (torch.rand(4, 64), torch.rand(4, 8, 8), torch.rand(4, 3, 8, 8), torch.rand(4, 1, 16, 16)):
        got = re.escape(str(tuple(bad.shape)))
        with pytest.raises(ValueError, match=rf"expected input of shape \(batch, 1, 8, 8\), got {got}"):
            model(bad)


def test_image_size_not_divisible_by_patch_size_is_a_clear_error():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        ViT(image_size=8, patch_size=3)
    with pytest.raises(ValueError, match="divisible by patch_size"):
        patchify(torch.rand(2, 1, 8, 8), 3)
    with pytest.raises(ValueError, match="pos must be one of"):
        ViT(pos="sinusoidal")


def test_vit_trains_on_a_tiny_batch():
    torch.manual_seed(0)
    model = ViT(d_model=16, depth=1, n_heads=2)
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


def test_tokens_are_layer_normalized_and_the_head_reads_the_class_token():
    model = small()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    z = model.tokens(x)                        # the final LayerNorm starts with weight 1 and bias 0
    assert torch.allclose(z.mean(-1), torch.zeros(3, 17, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(z.var(-1, unbiased=False), torch.ones(3, 17, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(model(x), model.head(z[:, 0]), atol=1e-12)


def test_tokens_are_class_token_then_embedded_patches_plus_positions():
    model = small(dropout=0.1)
    assert model.cls.shape == (1, 1, 16) and model.pos_emb.shape == (1, 17, 16)
    assert all(b.drop.p == 0.1 for b in model.blocks)        # dropout reaches the blocks (eval here: inactive)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    z = torch.cat([model.cls.expand(3, 1, 16), model.embed(patchify(x, 2))], dim=1) + model.pos_emb
    torch.testing.assert_close(model.embed_tokens(x), z, rtol=0, atol=1e-14)


def test_position_vectors_start_small():
    torch.manual_seed(0)
    std = ViT(d_model=64).pos_emb.std().item()
    assert abs(std / 0.02 - 1) < 0.1


def test_size_checks_and_their_messages():
    assert param_count(image_size=1, patch_size=1) == ViT(image_size=1, patch_size=1).num_params()
    assert ViT(num_classes=1, d_model=16, depth=1, n_heads=2)(torch.rand(2, 1, 8, 8)).shape == (2, 1)
    for kw in (dict(image_size=0), dict(patch_size=0)):
        with pytest.raises(ValueError, match=r"must be positive, got \d and \d"):
            ViT(**kw)
    for kw in (dict(depth=0), dict(num_classes=0), dict(in_channels=0)):
        with pytest.raises(ValueError, match="depth, num_classes and in_channels must be positive"):
            ViT(**kw)
    with pytest.raises(ValueError, match=r"got list"):
        small()([[0.0] * 8] * 8)


def test_patchify_and_unpatchify_reject_bad_shapes():
    for shape in ((2, 1, 8, 6), (2, 1, 6, 8)):
        with pytest.raises(ValueError, match="not divisible by patch_size 4"):
            patchify(torch.rand(*shape), 4)
    with pytest.raises(ValueError, match=r"\(batch, channels, height, width\), got \(8, 8\)"):
        patchify(torch.rand(8, 8), 2)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(unpatchify(patchify(x, 2), 2, 8), x)            # one channel by default
    for bad in (torch.rand(2, 15, 4), torch.rand(2, 16, 5), torch.rand(16, 4)):
        with pytest.raises(ValueError, match=r"expected patches of shape \(batch, 16, 4\), got "
                                             + re.escape(str(tuple(bad.shape)))):
            unpatchify(bad, 2, 8)
