"""dlcore.attention: explicit attention equals torch's in float64, forward and backward, with every kind of mask.

- ``scaled_dot_product_attention`` equals ``torch.nn.functional.scaled_dot_product_attention`` (outputs and the
  gradients with respect to q, k, v) with no mask, boolean and additive masks, padding and causal masks;
- ``MultiHeadAttention`` with weights copied from ``torch.nn.MultiheadAttention(batch_first=True)`` gives the same
  outputs, per-head attention weights and gradients (inputs and every weight) for self- and cross-attention;
- causal masking: perturbing a future token leaves earlier outputs unchanged; attention rows sum to one;
- positions: sinusoidal codes follow the formula; rotary embeddings keep norms and make ``q_m . k_n`` depend on
  ``m - n`` only;
- bad input gives a clear ValueError; three planted bugs (no 1/sqrt(d), heads merged with the wrong transpose,
  the mask applied after the softmax) each fail the torch comparison, so the comparison can tell right from wrong.
"""

from __future__ import annotations

import math
import re
import types

import pytest
import torch
import torch.nn.functional as F
from _mutants import planted_bug

from dlcore import attention as att
from dlcore.attention import (
    MultiHeadAttention,
    apply_rope,
    causal_mask,
    padding_mask,
    rope_cache,
    scaled_dot_product_attention,
    sinusoidal_positions,
)

TOL = 1e-10
DT = torch.float64


def _rand(*shape, seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=DT).requires_grad_(grad)


def _masks(N=2, H=3, Tq=5, Tk=5):
    """name -> (boolean or float mask for dlcore and for F.sdpa (same convention), causal flag)."""
    g = torch.Generator().manual_seed(1)
    rnd = torch.rand(N, H, Tq, Tk, generator=g) > 0.4
    rnd[..., 0] = True                                        # every query keeps at least one key
    additive = torch.randn(Tq, Tk, generator=g, dtype=DT)
    return {
        "none": (None, False),
        "bool_random": (rnd, False),
        "additive": (additive, False),
        "padding": (padding_mask([Tk, 2], Tk), False),
        "causal_flag": (None, True),
        "causal_mask": (causal_mask(Tq), False),
    }


def _sdpa_errors(mod, name: str) -> float:
    """Largest |difference| between mod.scaled_dot_product_attention and torch's, outputs and input gradients."""
    mask, causal = _masks()[name]
    q, k, v = _rand(2, 3, 5, 4, seed=1), _rand(2, 3, 5, 4, seed=2), _rand(2, 3, 5, 6, seed=3)
    q2, k2, v2 = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    out, w = mod.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)
    ref = F.scaled_dot_product_attention(q2, k2, v2, attn_mask=mask, is_causal=causal)
    g = _rand(*out.shape, seed=4, grad=False)
    (out * g).sum().backward()
    (ref * g).sum().backward()
    errs = [(out - ref).detach().abs().max()] + [(a.grad - b.grad).abs().max() for a, b in ((q, q2), (k, k2), (v, v2))]
    return max(float(e) for e in errs)


@pytest.mark.parametrize("name", list(_masks()))
def test_sdpa_matches_torch_forward_and_backward(name):
    assert _sdpa_errors(att, name) < TOL


def test_attention_rows_sum_to_one_and_masked_weights_are_zero():
    q, k, v = _rand(2, 3, 5, 4, seed=1), _rand(2, 3, 7, 4, seed=2), _rand(2, 3, 7, 2, seed=3)
    keep = padding_mask([7, 3], 7)
    _, w = scaled_dot_product_attention(q, k, v, mask=keep)
    assert torch.allclose(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-12)
    assert (w[1, ..., 3:] == 0).all() and (w[1, ..., :3] > 0).all()
    _, wc = scaled_dot_product_attention(q, k[..., :5, :], v[..., :5, :], causal=True)
    assert (wc.triu(1) == 0).all() and torch.allclose(wc.sum(-1), torch.ones(2, 3, 5, dtype=DT), atol=1e-12)


def test_causal_mask_is_lower_triangular_and_bottom_right_aligned_for_cached_keys():
    assert torch.equal(causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())
    m = causal_mask(2, k_len=5)                   # 2 new queries at positions 3 and 4 after 3 cached keys
    assert m.tolist() == [[True] * 4 + [False], [True] * 5]
    # the last rows of a full causal attention equal attention of the last queries over all keys
    q, k, v = _rand(1, 6, 4, seed=5), _rand(1, 6, 4, seed=6), _rand(1, 6, 3, seed=7)
    full, _ = scaled_dot_product_attention(q, k, v, causal=True)
    tail, _ = scaled_dot_product_attention(q[:, 4:], k, v, causal=True)
    assert (full[:, 4:] - tail).abs().max() < 1e-14
    # torch names this alignment causal_lower_right; its is_causal=True aligns top-left and differs for Tq < Tk
    from torch.nn.attention.bias import causal_lower_right
    ref = F.scaled_dot_product_attention(q[:, 4:], k, v, attn_mask=causal_lower_right(2, 6))
    assert (ref - tail).abs().max() < 1e-14
    assert (F.scaled_dot_product_attention(q[:, 4:], k, v, is_causal=True) - tail).abs().max() > 1e-3
    with pytest.raises(ValueError, match="T <= k_len"):
        causal_mask(5, k_len=3)


def test_causal_attention_ignores_future_tokens():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, dtype=DT)
    x = _rand(2, 6, 8, seed=8, grad=False)
    t = 3
    x2 = x.clone()
    x2[:, t] += 5.0 * _rand(2, 8, seed=9, grad=False)
    y, y2 = mha(x, causal=True), mha(x2, causal=True)
    assert (y[:, :t] - y2[:, :t]).abs().max() == 0          # earlier positions: bit-for-bit unchanged
    assert (y[:, t:] - y2[:, t:]).abs().max() > 1e-3         # the perturbed position and later ones change
    y3 = mha(x2)                                             # without the mask the past does see the future
    assert (mha(x)[:, :t] - y3[:, :t]).abs().max() > 1e-3


def _mha_pair(mod, d=8, h=2, bias=True, seed=0):
    torch.manual_seed(seed)
    ref = torch.nn.MultiheadAttention(d, h, bias=bias, batch_first=True, dtype=DT)
    with torch.no_grad():                         # torch initialises biases to zero: make them count
        if bias:
            ref.in_proj_bias.normal_()
            ref.out_proj.bias.normal_()
    return ref, mod.MultiHeadAttention.from_torch(ref)


def _mha_errors(mod, case: str, bias: bool = True) -> float:
    """Largest |difference| to torch: outputs, per-head weights, input gradients and every weight's gradient."""
    ref, ours = _mha_pair(mod, bias=bias)
    N, Tq, Tk, d = 2, 5, 5 if case != "cross" else 7, 8
    xq = _rand(N, Tq, d, seed=10)
    xkv = _rand(N, Tk, d, seed=11) if case == "cross" else xq
    xq2 = xq.detach().clone().requires_grad_(True)
    xkv2 = xkv.detach().clone().requires_grad_(True) if case == "cross" else xq2
    kw_ours, kw_ref = {}, {}
    if case == "causal":
        kw_ours["causal"] = True
        kw_ref["attn_mask"] = ~causal_mask(Tq)            # torch's MHA: True = blocked
    elif case == "padding":
        kw_ours["mask"] = padding_mask([Tk, 3], Tk)
        kw_ref["key_padding_mask"] = ~padding_mask([Tk, 3], Tk)[:, 0, 0, :]
    elif case == "additive":
        kw_ours["mask"] = kw_ref["attn_mask"] = _rand(Tq, Tk, seed=12, grad=False)
    out, w = ours(xq, None if case != "cross" else xkv, need_weights=True, **kw_ours)
    ref_out, ref_w = ref(xq2, xkv2, xkv2, need_weights=True, average_attn_weights=False, **kw_ref)
    g = _rand(*out.shape, seed=13, grad=False)
    (out * g).sum().backward()
    (ref_out * g).sum().backward()
    errs = [(out - ref_out).detach().abs().max(), (w - ref_w).detach().abs().max(), (xq.grad - xq2.grad).abs().max()]
    if case == "cross":
        errs.append((xkv.grad - xkv2.grad).abs().max())
    W, B = ref.in_proj_weight.grad, ref.in_proj_bias.grad if bias else None
    for i, lin in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        errs.append((lin.weight.grad - W[i * d:(i + 1) * d]).abs().max())
        if bias:
            errs.append((lin.bias.grad - B[i * d:(i + 1) * d]).abs().max())
    errs.append((ours.out_proj.weight.grad - ref.out_proj.weight.grad).abs().max())
    if bias:
        errs.append((ours.out_proj.bias.grad - ref.out_proj.bias.grad).abs().max())
    return max(float(e) for e in errs)


@pytest.mark.parametrize("case", ["self", "cross", "causal", "padding", "additive"])
def test_multihead_matches_torch_forward_and_backward(case):
    assert _mha_errors(att, case) < TOL


def test_multihead_without_bias_matches_torch():
    assert _mha_errors(att, "causal", bias=False) < TOL


def test_copy_from_torch_layout_and_parameter_count():
    ref, ours = _mha_pair(att, d=12, h=3)
    assert torch.equal(ours.k_proj.weight, ref.in_proj_weight[12:24])    # nn.Linear stores W_k^T
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 4 * 12 * 13
    with pytest.raises(ValueError, match="heads"):
        MultiHeadAttention(12, 4, dtype=DT).copy_from_torch(ref)


def test_dropout_acts_only_in_training():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, dropout=0.5, dtype=DT)
    x = _rand(2, 5, 8, seed=14, grad=False)
    mha.eval()
    assert torch.equal(mha(x), mha(x))
    plain = MultiHeadAttention(8, 2, dropout=0.0, dtype=DT)
    plain.load_state_dict(mha.state_dict())
    assert torch.equal(mha(x), plain(x))                     # evaluation: exactly the module without dropout
    mha.train()
    assert not torch.equal(mha(x), mha(x))


def test_sinusoidal_positions_follow_the_formula():
    T, d = 11, 6
    P = sinusoidal_positions(T, d, dtype=DT)
    for t in range(T):
        for i in range(d // 2):
            assert abs(P[t, 2 * i] - math.sin(t / 10000 ** (2 * i / d))) < 1e-14
            assert abs(P[t, 2 * i + 1] - math.cos(t / 10000 ** (2 * i / d))) < 1e-14


def test_rope_preserves_norms_and_depends_only_on_relative_position():
    d, T = 8, 40
    cos, sin = rope_cache(T, d, dtype=DT)
    x = _rand(T, d, seed=15, grad=False)
    assert (apply_rope(x, cos, sin).norm(dim=-1) - x.norm(dim=-1)).abs().max() < 1e-12
    q, k = _rand(d, seed=16, grad=False), _rand(d, seed=17, grad=False)
    Q = apply_rope(q.expand(T, d), cos, sin)              # the same query placed at every position
    K = apply_rope(k.expand(T, d), cos, sin)
    S = Q @ K.T                                           # S[m, n] = <R_m q, R_n k>
    for delta in (-5, 0, 3, 17):
        diag = torch.diagonal(S, offset=-delta)           # all pairs with m - n = delta
        assert (diag - diag[0]).abs().max() < 1e-12
    assert (S[0, 0] - S[0, 1]).abs() > 1e-3               # and it does depend on m - n
    # offset: rotating rows 5.. alone equals the tail of rotating the whole sequence
    assert (apply_rope(x[5:], cos, sin, offset=5) - apply_rope(x, cos, sin)[5:]).abs().max() == 0


def test_rope_rotates_pairs_i_and_i_plus_half():
    d = 4
    cos, sin = rope_cache(3, d, base=100.0, dtype=DT)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=DT).expand(3, d)
    y = apply_rope(x, cos, sin)
    for t in range(3):
        for i in range(d // 2):
            th = t * 100.0 ** (-2 * i / d)
            a, b = x[t, i], x[t, i + d // 2]
            assert abs(y[t, i] - (a * math.cos(th) - b * math.sin(th))) < 1e-14
            assert abs(y[t, i + d // 2] - (a * math.sin(th) + b * math.cos(th))) < 1e-14


def test_bad_input_gives_clear_errors():
    q, k, v = _rand(2, 5, 4), _rand(2, 5, 3), _rand(2, 5, 3)
    with pytest.raises(ValueError, match=r"same head dimension, got q \(\.\.\., 4\) and k \(\.\.\., 3\)"):
        scaled_dot_product_attention(q, k, v)
    with pytest.raises(ValueError, match=r"same length, got k \(\.\.\., 5, d\) and v \(\.\.\., 6, dv\)"):
        scaled_dot_product_attention(q, _rand(2, 5, 4), _rand(2, 6, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, q, v, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiple of n_heads"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(torch.randn(2, 5, 8), mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(batch, time, 8\)"):
        mha(torch.randn(5, 8))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positions(4, 5)
    with pytest.raises(ValueError, match="even"):
        rope_cache(4, 5)
    cos, sin = rope_cache(4, 8)
    with pytest.raises(ValueError, match="cover 4 positions"):
        apply_rope(torch.randn(6, 8), cos, sin)
    with pytest.raises(ValueError, match="head size 6"):
        apply_rope(torch.randn(4, 6), cos, sin)


def test_sdpa_defaults_are_no_mask_and_no_dropout():
    q, k = _rand(2, 5, 4, seed=20, grad=False), _rand(2, 7, 4, seed=21, grad=False)
    v = _rand(2, 7, 3, seed=22, grad=False)
    out, w = scaled_dot_product_attention(q, k, v)
    assert (out - F.scaled_dot_product_attention(q, k, v)).abs().max() < TOL
    assert (out - w @ v).abs().max() < TOL and (w > 0).all()        # every query sees every key


def test_sdpa_accepts_unbatched_2d_inputs_and_rejects_1d_ones():
    q, k, v = _rand(5, 4, seed=23, grad=False), _rand(6, 4, seed=24, grad=False), _rand(6, 3, seed=25, grad=False)
    out, _ = scaled_dot_product_attention(q, k, v)
    assert (out - F.scaled_dot_product_attention(q, k, v)).abs().max() < TOL
    for bad in ((q[0], k, v), (q, k[0], v), (q, k, v[0])):
        with pytest.raises(ValueError, match=r"q, k, v need shape \(\.\.\., T, d\), got "
                           + ", ".join(re.escape(str(tuple(t.shape))) for t in bad)):
            scaled_dot_product_attention(*bad)


def test_additive_mask_of_another_dtype_keeps_the_inputs_dtype():
    q = _rand(2, 5, 4, seed=26, grad=False).float()
    mask = _rand(5, 5, seed=27, grad=False)                          # float64 mask, float32 inputs
    out, w = scaled_dot_product_attention(q, q, q, mask=mask)
    assert out.dtype == w.dtype == torch.float32
    ref = F.scaled_dot_product_attention(q.double(), q.double(), q.double(), attn_mask=mask.float().double())
    assert (out.double() - ref).abs().max() < 1e-5


def test_dropout_zeroes_a_fraction_p_of_weights_and_rescales_the_rest():
    torch.manual_seed(0)
    T, p = 64, 0.2
    q, k = _rand(4, T, 8, seed=28, grad=False), _rand(4, T, 8, seed=29, grad=False)
    out, w = scaled_dot_product_attention(q, k, torch.eye(T, dtype=DT), dropout_p=p)   # v = I: out = dropped weights
    assert torch.allclose(w.sum(-1), torch.ones(4, T, dtype=DT))      # returned weights: before dropout
    dropped = out == 0
    assert abs(dropped.double().mean().item() - p) < 0.02
    assert (out[~dropped] - w[~dropped] / (1 - p)).abs().max() < 1e-12


def test_causal_mask_of_zero_queries_is_empty_and_negative_sizes_are_errors():
    assert causal_mask(0, k_len=3).shape == (0, 3)
    with pytest.raises(ValueError, match="T=-1"):
        causal_mask(-1, k_len=3)


def test_padding_mask_accepts_lengths_1_to_T_only():
    assert padding_mask([1, 4], 4)[:, 0, 0].tolist() == [[True, False, False, False], [True] * 4]
    for bad in ([0, 4], [5, 4], [[2, 3]]):
        with pytest.raises(ValueError, match=r"lengths must be a 1-D sequence of integers in \[1, 4\]"):
            padding_mask(bad, 4)


def test_multihead_sizes_defaults_and_errors():
    mha = MultiHeadAttention(8, 1)                                   # one head of size 8 is fine
    assert mha.d_head == 8 and mha.q_proj.bias is not None          # biases by default
    assert sum(p.numel() for p in mha.parameters()) == 4 * 8 * 9
    assert MultiHeadAttention(1, 1).d_head == 1
    for d_model, n_heads in ((0, 1), (8, 0), (-4, 2)):
        with pytest.raises(ValueError, match="positive multiple"):
            MultiHeadAttention(d_model, n_heads)
    with pytest.raises(ValueError, match="expected x_q of shape"):
        mha(torch.randn(5, 8))
    with pytest.raises(ValueError, match="expected x_kv of shape"):
        mha(torch.randn(2, 5, 8), torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="same batch size, got 2 and 3"):
        mha(torch.randn(2, 5, 8), torch.randn(3, 5, 8))


def test_from_torch_copies_dropout_and_copy_from_torch_rejects_unsupported_modules():
    ref = torch.nn.MultiheadAttention(8, 2, dropout=0.1, batch_first=True, dtype=DT)
    ours = MultiHeadAttention.from_torch(ref)
    assert ours.dropout == 0.1 and ours.q_proj.weight.dtype == DT
    with pytest.raises(ValueError, match="bias mismatch"):
        MultiHeadAttention(8, 2, bias=False, dtype=DT).copy_from_torch(ref)
    for kw in (dict(add_bias_kv=True), dict(add_zero_attn=True), dict(kdim=4, vdim=4)):
        with pytest.raises(ValueError, match="only nn.MultiheadAttention"):
            MultiHeadAttention(8, 2).copy_from_torch(torch.nn.MultiheadAttention(8, 2, **kw))


def test_results_are_made_on_the_requested_device():
    """``device=`` is honoured everywhere (the meta device needs no accelerator and computes only shapes)."""
    m = "meta"
    assert causal_mask(3, device=m).is_meta
    assert sinusoidal_positions(4, 4, device=m).is_meta
    assert all(t.is_meta for t in rope_cache(4, 4, device=m))
    assert all(p.is_meta for p in MultiHeadAttention(8, 2, device=m).parameters())
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True, device=m)
    assert all(p.is_meta for p in MultiHeadAttention.from_torch(ref).parameters())
    q = torch.empty(2, 3, 4, device=m)
    assert all(t.is_meta for t in scaled_dot_product_attention(q, q, q, causal=True))


def test_position_tables_default_to_float32_and_base_10000():
    P = sinusoidal_positions(3, 4)
    cos, sin = rope_cache(3, 4)
    assert P.dtype == cos.dtype == sin.dtype == torch.float32
    th = torch.tensor([[t * 10000.0 ** (-2 * i / 4) for i in (0, 1, 0, 1)] for t in range(3)], dtype=DT)
    assert (cos.double() - th.cos()).abs().max() < 1e-7 and (sin.double() - th.sin()).abs().max() < 1e-7
    assert (P.double()[:, 2] - th[:, 1].sin()).abs().max() < 1e-7


def test_position_tables_need_an_even_positive_size():
    for d in (0, 3, 5):
        with pytest.raises(ValueError, match="even"):
            sinusoidal_positions(4, d)
        with pytest.raises(ValueError, match="even"):
            rope_cache(4, d)


def test_apply_rope_keeps_the_dtype_of_x_and_checks_the_tables():
    cos, sin = rope_cache(8, 4, dtype=DT)
    x = torch.randn(3, 4)
    y = apply_rope(x, cos, sin, offset=2)
    assert y.dtype == torch.float32
    assert (y.double() - apply_rope(x.double(), cos, sin, offset=2)).abs().max() < 1e-6
    with pytest.raises(ValueError, match="rope tables must both be"):
        apply_rope(x, cos, sin[:5])
    with pytest.raises(ValueError, match=r"positions 6\.\.8 were asked for"):
        apply_rope(x, cos, sin, offset=6)
    with pytest.raises(ValueError, match=r"positions -1\.\.1"):
        apply_rope(x, cos, sin, offset=-1)


# ------------------------------------------------------------------------------------------ planted bugs
def _mutant(old: str, new: str) -> types.ModuleType:
    """A copy of dlcore.attention with one piece of source text replaced (which must occur exactly once)."""
    return planted_bug(att, old, new)


PLANTED_BUGS = {
    "no_sqrt_d": ("scores = q @ k.transpose(-2, -1) / math.sqrt(d)", "scores = q @ k.transpose(-2, -1)"),
    "heads_merged_without_transpose": ("heads.transpose(1, 2).reshape(N, Tq, self.d_model)",
                                       "heads.reshape(N, Tq, self.d_model)"),
    "mask_after_softmax": ("    weights = torch.softmax(scores, dim=-1)\n",
                           "    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)"
                           ".masked_fill(scores == float('-inf'), 0.0)\n"),
}


@pytest.mark.parametrize("bug", list(PLANTED_BUGS))
def test_planted_bugs_fail_the_torch_comparison(bug):
    mod = _mutant(*PLANTED_BUGS[bug])
    errs = {case: _mha_errors(mod, case) for case in ("self", "causal", "padding")}
    errs.update({name: _sdpa_errors(mod, name) for name in ("none", "causal_flag")})
    assert max(errs.values()) > 1e-3, (bug, errs)
    if bug == "mask_after_softmax":                   # the unmasked case is right; only the masked ones fail
        assert errs["causal"] > 1e-3 and errs["none"] < TOL
