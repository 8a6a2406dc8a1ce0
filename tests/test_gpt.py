"""Tests for dlcore.models.gpt: shapes, causal masking, kernels, KV cache, generation, counts, errors."""
import re

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dlcore.attention import apply_rope, rope_cache, sinusoidal_positions
from dlcore.models.gpt import GPT, Block, GPTConfig, SelfAttention, flops_per_token, generate, param_count
from dlcore.text import generate as text_generate

POS = ["learned", "sinusoidal", "rope", "none"]
V, CTX = 23, 16


def make(pos="learned", attn="sdpa", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, context=CTX, d_model=24, n_heads=3, n_layers=2, pos=pos, attn=attn)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).double().eval()


def ids(n=2, t=12, seed=1):
    return torch.randint(0, V, (n, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pos", POS)
def test_shapes_and_state(pos):
    m = make(pos)
    logits, state = m(ids())
    assert logits.shape == (2, 12, V)
    assert len(state) == 2 and state[0][0].shape == (2, 3, 12, 8) and state[0][1].shape == (2, 3, 12, 8)
    block = Block(24, 3, causal=False, pos=pos if pos != "learned" else "none")
    assert block(torch.randn(2, 5, 24)).shape == (2, 5, 24)


@pytest.mark.parametrize("pos", POS)
def test_causal_masking_future_token_leaves_earlier_logits_unchanged(pos):
    m = make(pos)
    x = ids()
    y = x.clone()
    y[:, 7] = (y[:, 7] + 5) % V
    a, b = m(x)[0], m(y)[0]
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-12)
    assert (a[:, 7:] - b[:, 7:]).abs().max() > 1e-6     # the change does reach later positions


def test_non_causal_block_sees_the_future():
    torch.manual_seed(0)
    block = Block(16, 2, causal=False).double()
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    y = x.clone()
    y[0, 5] += torch.randn(16, dtype=torch.float64)     # not a constant shift: LayerNorm would remove it
    assert (block(x)[0, 0] - block(y)[0, 0]).abs().max() > 1e-6


@pytest.mark.parametrize("pos", POS)
def test_sdpa_equals_manual_attention(pos):
    a, b = make(pos, "sdpa"), make(pos, "manual")
    b.load_state_dict(a.state_dict())
    x = ids()
    torch.testing.assert_close(a(x)[0], b(x)[0], rtol=0, atol=1e-12)
    # and with a cache (new queries after cached keys: the mask must be aligned bottom-right)
    _, sa = a(x[:, :5])
    _, sb = b(x[:, :5])
    torch.testing.assert_close(a(x[:, 5:], sa)[0], b(x[:, 5:], sb)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("attn", ["sdpa", "manual"])
@pytest.mark.parametrize("pos", POS)
def test_kv_cache_incremental_logits_equal_full_recomputation(pos, attn):
    m = make(pos, attn)
    x = ids(t=CTX)
    full = m(x)[0]
    pieces, state, t = [], None, 0
    for size in (5, 1, 3, 1, 2, 4):     # a prompt, then single tokens and chunks, to the full context
        logits, state = m(x[:, t:t + size], state)
        pieces.append(logits)
        t += size
    assert t == CTX
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-10)


@pytest.mark.parametrize("pos", POS)
def test_generate_with_and_without_cache_gives_identical_ids(pos):
    m = make(pos)
    prompt = ids(t=4)
    a = generate(m, prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(3))   # past the context
    b = generate(m, prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert a.shape == (2, 24)
    assert torch.equal(a, b)
    assert torch.equal(a[:, :4], prompt)
    c = generate(m, prompt, 8, top_k=3, generator=torch.Generator().manual_seed(3))
    d = generate(m, prompt, 8, top_k=3, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert torch.equal(c, d)


def test_dlcore_text_generate_drives_gpt_through_its_state():
    m = make("rope")
    m.train()
    prompt = ids(n=1, t=3)[0]
    a = text_generate(m, prompt, 10, generator=torch.Generator().manual_seed(0))
    b = generate(m, prompt[None], 10, generator=torch.Generator().manual_seed(0), use_cache=False)
    assert torch.equal(a, b)
    assert m.training     # mode restored


@pytest.mark.parametrize("kw", [dict(), dict(bias=False), dict(pos="rope"), dict(pos="sinusoidal", mlp_ratio=2),
                                dict(d_model=64, n_heads=8, n_layers=3, vocab_size=97, context=40, bias=False)])
def test_param_count_formula_matches_the_model(kw):
    cfg = dict(vocab_size=V, context=CTX, d_model=24, n_heads=3, n_layers=2)
    cfg.update(kw)
    config = GPTConfig(**cfg)
    assert param_count(config) == GPT(config).num_params()


def test_param_count_closed_form_12Ld2():
    c = GPTConfig(vocab_size=65, context=64, d_model=128, n_heads=4, n_layers=2)
    d, L, v = 128, 2, 65
    assert param_count(c) == 12 * L * d * d + 13 * L * d + 2 * v * d + v + 2 * d + 64 * d


@pytest.mark.parametrize("attn", ["sdpa", "manual"])
@pytest.mark.parametrize("kw", [dict(), dict(d_model=32, n_heads=2, n_layers=3, mlp_ratio=2, vocab_size=50)])
def test_flops_per_token_matches_flop_counter(attn, kw):
    cfg = dict(vocab_size=V, context=CTX, d_model=24, n_heads=3, n_layers=2, attn=attn)
    cfg.update(kw)
    config = GPTConfig(**cfg)
    m = GPT(config).eval()
    n, t = 2, 12
    with FlopCounterMode(display=False) as counter:
        m(torch.randint(0, config.vocab_size, (n, t)))
    counted = counter.get_total_flops() / (n * t)
    formula = flops_per_token(config, t)
    attention = 4 * config.n_layers * t * config.d_model
    if attn == "sdpa" and abs(counted - (formula - attention)) <= 0.03 * counted:
        # torch's CPU SDPA kernel has no FLOP formula registered, so the counter sees only the weight matmuls
        formula -= attention
    assert abs(counted - formula) <= 0.03 * counted
    assert flops_per_token(config) == flops_per_token(config, CTX)


def test_sequence_longer_than_context_is_a_clear_error():
    m = make()
    with pytest.raises(ValueError, match="context of 16"):
        m(torch.zeros(1, CTX + 1, dtype=torch.long))
    _, state = m(torch.zeros(1, CTX - 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"sequence of length 17 \(cached 14 \+ new 3\) exceeds the model's context"):
        m(torch.zeros(1, 3, dtype=torch.long), state)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(vocab_size=V, context=CTX, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="divisible"):
        Block(30, 4)
    with pytest.raises(ValueError, match="pos must be"):
        GPTConfig(vocab_size=V, context=CTX, pos="alibi")
    with pytest.raises(ValueError, match="attn must be"):
        GPTConfig(vocab_size=V, context=CTX, attn="flash")
    with pytest.raises(ValueError, match="head size must be even"):
        GPTConfig(vocab_size=V, context=CTX, d_model=12, n_heads=4, pos="rope")
    with pytest.raises(ValueError, match="batch, time"):
        make()(torch.zeros(5, dtype=torch.long))


def test_attention_maps_are_causal_distributions():
    m = make("rope")
    maps = m.attention_maps(ids(t=7))
    assert len(maps) == 2 and maps[0].shape == (2, 3, 7, 7)
    for w in maps:
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 7, dtype=w.dtype))
        assert torch.all(w.triu(diagonal=1) == 0)


def test_pre_layernorm_block_structure():
    """Block(x) = x + attn(ln1(x)), then + mlp(ln2(.)): zeroing both output projections gives the identity."""
    torch.manual_seed(0)
    block = Block(16, 2).double()
    with torch.no_grad():
        for lin in (block.attn.proj, block.mlp[2]):
            lin.weight.zero_()
            lin.bias.zero_()
    x = 5 * torch.randn(2, 4, 16, dtype=torch.float64) + 3
    torch.testing.assert_close(block(x), x)
    # and a full reference: pre-LN composition written out
    torch.manual_seed(1)
    block = Block(16, 2, causal=True).double()
    h = x + block.attn(block.ln1(x))[0]
    ref = h + block.mlp(block.ln2(h))
    torch.testing.assert_close(block(x), ref, rtol=0, atol=1e-12)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=V, context=CTX, d_model=16, n_heads=2, dropout=0.5))
    x = ids()
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])


def test_gpt2_initialization_scales_the_residual_writers():
    """Weights N(0, 0.02^2), biases 0; attention output and second MLP layer N(0, (0.02/sqrt(2L))^2)."""
    torch.manual_seed(0)
    L = 8
    m = GPT(GPTConfig(vocab_size=V, context=CTX, d_model=128, n_heads=4, n_layers=L))
    writers = torch.cat([w.flatten() for b in m.blocks for w in (b.attn.proj.weight, b.mlp[2].weight)])
    readers = torch.cat([w.flatten() for b in m.blocks for w in (b.attn.qkv.weight, b.mlp[0].weight)])
    assert abs(writers.std().item() / (0.02 / (2 * L) ** 0.5) - 1) < 0.02
    assert abs(readers.std().item() / 0.02 - 1) < 0.02
    assert abs(m.tok.weight.std().item() / 0.02 - 1) < 0.05
    assert all(torch.all(b.attn.qkv.bias == 0) and torch.all(b.mlp[2].bias == 0) for b in m.blocks)


@pytest.mark.parametrize("pos", ["learned", "sinusoidal"])
def test_positions_are_added_to_the_token_embeddings(pos):
    m = make(pos)
    x = ids(t=7)
    table = m.pos_emb.weight if pos == "learned" else sinusoidal_positions(CTX, 24).double()  # stored as float32
    h = m.tok(x) + table[:7]
    for block in m.blocks:
        h = block(h)
    torch.testing.assert_close(m(x)[0], m.head(m.ln_f(h)), rtol=0, atol=1e-12)
    if pos == "sinusoidal":
        assert "pos_table" not in m.state_dict()            # a fixed buffer: not saved with the weights


def test_rope_rotates_queries_and_keys_by_position():
    torch.manual_seed(0)
    att = SelfAttention(16, 2, pos="rope").double()
    x = torch.randn(2, 70, 16, dtype=torch.float64)         # longer than the 64 rows built by default
    q, k, v = (z.view(2, 70, 2, 8).transpose(1, 2) for z in att.qkv(x).split(16, dim=-1))
    cos, sin = rope_cache(70, 8, dtype=torch.float64)
    out = F.scaled_dot_product_attention(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v, is_causal=True)
    ref = att.proj(out.transpose(1, 2).reshape(2, 70, 16))
    torch.testing.assert_close(att(x)[0], ref, rtol=0, atol=1e-12)
    # the same weights in a whole model: rope changes the logits, with no parameter of its own
    assert (make("rope")(ids())[0] - make("none")(ids())[0]).abs().max() > 1e-4


def test_rope_table_is_built_once_and_rebuilt_for_longer_inputs_or_another_dtype():
    torch.manual_seed(0)
    att = SelfAttention(16, 2, pos="rope")
    att(torch.randn(1, 5, 16))
    table = att._rope_cache
    assert table[0].shape == (64, 8)
    att(torch.randn(1, 64, 16))
    assert att._rope_cache is table                         # reused while it covers the positions
    att(torch.randn(1, 65, 16))
    assert att._rope_cache[0].shape == (65, 8)
    att.double()
    x = torch.randn(1, 5, 16, dtype=torch.float64)
    fresh = SelfAttention(16, 2, pos="rope").double()
    fresh.load_state_dict(att.state_dict())
    torch.testing.assert_close(att(x)[0], fresh(x)[0], rtol=0, atol=1e-14)   # float64 tables, not float32 ones


def test_runs_on_the_device_of_its_weights():
    """Masks, positions and rope tables follow the input's device (meta: shapes only, no accelerator)."""
    for pos in POS:
        for attn in ("sdpa", "manual"):
            m = make(pos, attn).to("meta")
            x = torch.zeros(1, 4, dtype=torch.long, device="meta")
            logits, state = m(x)
            assert logits.is_meta and m(x[:, :2], state)[0].is_meta
            assert all(w.is_meta for w in m.attention_maps(x))


def test_defaults_of_self_attention_and_block():
    att = SelfAttention(16, 2)
    assert att.causal and not att.rope and att.attn == "sdpa" and att.qkv.bias is not None
    block = Block(16, 2)
    assert block.attn.causal and block.mlp[0].out_features == 64
    assert SelfAttention(16, 1).d_head == 16                # a single head is allowed
    with pytest.raises(ValueError, match="pos must be"):
        SelfAttention(16, 2, pos="alibi")


def test_config_bounds():
    base = dict(vocab_size=V, context=CTX, d_model=16, n_heads=2)
    for key in ("vocab_size", "context", "n_layers", "mlp_ratio"):
        GPTConfig(**{**base, key: 1})                       # 1 is allowed
        with pytest.raises(ValueError, match="must be positive"):
            GPTConfig(**{**base, key: 0})
    GPTConfig(**{**base, "n_heads": 1})
    GPTConfig(**base, dropout=0.99)
    for p in (1.0, -0.1):
        with pytest.raises(ValueError, match=rf"dropout must be in \[0, 1\), got {p}"):
            GPTConfig(**base, dropout=p)


def test_bad_inputs_name_what_was_given():
    m = make()
    with pytest.raises(ValueError, match=r"token ids, got \(5,\)"):
        m(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids, got list"):
        m([1, 2, 3])
    with pytest.raises(ValueError, match=r"^idx has no positions \(time dimension 0\)$"):
        m(torch.zeros(1, 0, dtype=torch.long))
    for bad in (torch.randn(2, 5, 8), torch.randn(5, 16)):
        with pytest.raises(ValueError, match=rf"\(batch, time, 16\), got {re.escape(str(tuple(bad.shape)))}"):
            Block(16, 2)(bad)


def test_flops_per_token_by_hand():
    c = GPTConfig(vocab_size=50, context=32, d_model=16, n_heads=2, n_layers=3, mlp_ratio=2)
    assert flops_per_token(c, 10) == 2 * (3 * 8 * 16 * 16 + 16 * 50) + 4 * 3 * 10 * 16
    assert flops_per_token(c) == flops_per_token(c, 32) != flops_per_token(c, 10)
