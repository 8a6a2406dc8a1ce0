"""Tests for dlcore.models.charrnn: the character-level RNN / LSTM / GRU language model of chapter 7."""
from __future__ import annotations

import pytest
import torch

from dlcore import text
from dlcore.models.charrnn import CELLS, CharRNN, hidden_for_params, param_count

V = 11


def _ids(n: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (n, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("embed_dim", [None, 5])
def test_forward_shapes_for_every_cell(cell, embed_dim):
    torch.manual_seed(0)
    model = CharRNN(V, hidden_size=7, cell=cell, num_layers=2, embed_dim=embed_dim)
    logits, state = model(_ids(3, 4))
    assert logits.shape == (3, 4, V)
    parts = state if cell == "lstm" else (state,)
    assert len(parts) == (2 if cell == "lstm" else 1)
    for p in parts:
        assert p.shape == (2, 3, 7)  # torch's state layout: (num_layers, batch, hidden)
    assert isinstance(model.rnn, CELLS[cell]) and model.rnn.batch_first


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_state_carried_over_equals_one_long_call(cell):
    """Two consecutive chunks with the returned state give the logits of one call on the whole sequence."""
    torch.manual_seed(1)
    model = CharRNN(V, hidden_size=9, cell=cell, num_layers=2).double()
    idx = _ids(2, 10, seed=3)
    whole, state_whole = model(idx)
    first, state = model(idx[:, :6])
    second, state2 = model(idx[:, 6:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, rtol=0, atol=1e-12)
    for a, b in zip(state2 if cell == "lstm" else (state2,), state_whole if cell == "lstm" else (state_whole,)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # and a fresh state at the chunk boundary gives different logits: the state carries information
    fresh, _ = model(idx[:, 6:])
    assert (fresh - second).abs().max() > 1e-6


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers, embed_dim", [(1, None), (2, None), (1, 16), (3, 4)])
def test_param_count_matches_the_module(cell, num_layers, embed_dim):
    model = CharRNN(V, hidden_size=13, cell=cell, num_layers=num_layers, embed_dim=embed_dim)
    assert sum(p.numel() for p in model.parameters()) == param_count(cell, V, 13, num_layers, embed_dim)


def test_param_count_by_hand():
    # LSTM, one-hot input V=11, H=13: 4*13*(11+13) weights + 2*4*13 biases; head 13*11 + 11
    assert param_count("lstm", 11, 13) == 4 * 13 * 24 + 8 * 13 + 13 * 11 + 11
    assert param_count("rnn", 11, 13) == 13 * 24 + 2 * 13 + 13 * 11 + 11


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("target", [20_000, 100_000, 250_000])
def test_hidden_for_params_hits_the_target(cell, target):
    h = hidden_for_params(cell, 103, target)
    got = sum(p.numel() for p in CharRNN(103, h, cell).parameters())
    assert abs(got - target) / target < 0.02
    # it is the closest width: one more or one less unit is no closer
    for other in (h - 1, h + 1):
        assert abs(param_count(cell, 103, other) - target) >= abs(got - target)


def test_equal_parameters_mean_narrower_gated_cells():
    hs = {c: hidden_for_params(c, 103, 100_000) for c in ("rnn", "gru", "lstm")}
    assert hs["rnn"] > hs["gru"] > hs["lstm"]


def test_hidden_for_params_rejects_a_target_below_the_smallest_model():
    with pytest.raises(ValueError, match="smaller than the smallest"):
        hidden_for_params("lstm", 103, 10)


def test_unknown_cell_is_a_clear_error():
    with pytest.raises(ValueError, match="cell must be 'rnn', 'lstm' or 'gru'"):
        CharRNN(V, 8, cell="transformer")
    with pytest.raises(ValueError, match="cell must be"):
        hidden_for_params("LSTM", V, 10_000)


@pytest.mark.parametrize("kwargs", [dict(hidden_size=0), dict(num_layers=0), dict(embed_dim=0),
                                    dict(dropout=1.0), dict(hidden_size=2.5)])
def test_bad_sizes_are_rejected(kwargs):
    with pytest.raises(ValueError):
        CharRNN(V, **kwargs)


def test_bad_inputs_raise_clear_errors():
    model = CharRNN(V, 8, cell="gru")
    with pytest.raises(ValueError, match=r"expected ids of shape \(batch, time\), got \(5,\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        model(torch.full((2, 3), V, dtype=torch.long))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_wrong_hidden_size_in_state_is_a_clear_error(cell):
    model = CharRNN(V, 8, cell=cell)
    bad = torch.zeros(1, 2, 5)
    state = (bad, bad) if cell == "lstm" else bad
    with pytest.raises(ValueError, match=r"\(num_layers, batch, hidden\) = \(1, 2, 8\), got \(1, 2, 5\)"):
        model(_ids(2, 3), state)
    good = torch.zeros(1, 3, 8)  # right hidden size, wrong batch
    with pytest.raises(ValueError, match="got"):
        model(_ids(2, 3), (good, good) if cell == "lstm" else good)


def test_lstm_state_must_be_a_pair():
    model = CharRNN(V, 8, cell="lstm")
    with pytest.raises(ValueError, match=r"pair \(h, c\)"):
        model(_ids(2, 3), torch.zeros(1, 2, 8))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_generate_works_and_is_seeded(cell):
    torch.manual_seed(0)
    model = CharRNN(V, 16, cell=cell)
    prompt = torch.tensor([1, 2, 3])
    a = text.generate(model, prompt, steps=20, temperature=1.0, generator=torch.Generator().manual_seed(7))
    b = text.generate(model, prompt, steps=20, temperature=1.0, generator=torch.Generator().manual_seed(7))
    c = text.generate(model, prompt, steps=20, temperature=1.0, generator=torch.Generator().manual_seed(8))
    assert a.shape == (1, 23) and torch.equal(a[0, :3], prompt)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.min()) >= 0 and int(a.max()) < V


def test_generate_greedy_matches_a_manual_argmax_loop():
    """generate's carried state gives the same continuation as re-reading the whole text each step."""
    torch.manual_seed(2)
    model = CharRNN(V, 12, cell="lstm").eval()
    out = text.generate(model, torch.tensor([4, 5]), steps=8, temperature=0.0)
    seq = torch.tensor([[4, 5]])
    with torch.no_grad():
        for _ in range(8):
            logits, _ = model(seq)
            seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq)


def test_training_lowers_the_loss_below_the_uniform_guess():
    """A few Adam steps on a repeating pattern: the model learns it (a smoke test of the whole pipeline)."""
    torch.manual_seed(0)
    ids = torch.arange(40) % 5
    model = CharRNN(5, 16, cell="gru")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        x, y = text.lm_batch(ids, 8, 10, g)
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert text.evaluate_lm(model, ids, seq_len=10) < 0.2 < torch.log(torch.tensor(5.0)).item()


@pytest.mark.parametrize("num_layers", [1, 2])
def test_forget_bias_sets_only_the_forget_block(num_layers):
    torch.manual_seed(0)
    ref = CharRNN(V, 6, "lstm", num_layers=num_layers)
    torch.manual_seed(0)
    model = CharRNN(V, 6, "lstm", num_layers=num_layers, forget_bias=1.0)
    for layer in range(num_layers):
        b = getattr(model.rnn, f"bias_ih_l{layer}") + getattr(model.rnn, f"bias_hh_l{layer}")
        torch.testing.assert_close(b[6:12], torch.ones(6))  # torch's gate order (i, f, g, o)
        ref_b = getattr(ref.rnn, f"bias_ih_l{layer}") + getattr(ref.rnn, f"bias_hh_l{layer}")
        torch.testing.assert_close(b[:6], ref_b[:6])  # the other gates keep torch's default draw
        torch.testing.assert_close(b[12:], ref_b[12:])
    with pytest.raises(ValueError, match="LSTM only"):
        CharRNN(V, 6, "gru", forget_bias=1.0)


# --- claims pinned by mutation testing -----------------------------------------------------------------


def test_defaults_are_a_256_wide_lstm():
    model = CharRNN(V)
    assert model.cell == "lstm" and isinstance(model.rnn, torch.nn.LSTM)
    assert model.hidden_size == 256 and model.rnn.hidden_size == 256
    assert model.num_layers == 1 and model.embed is None and model.embed_dim is None


def test_embed_dim_is_stored_and_one_is_a_valid_width():
    model = CharRNN(V, 4, "gru", embed_dim=1)
    assert model.embed_dim == 1 and model.embed.embedding_dim == 1 and model.rnn.input_size == 1
    assert CharRNN(V, 4, "gru", embed_dim=5).embed_dim == 5


@pytest.mark.parametrize("name, kwargs", [("vocab_size", dict(vocab_size=0)), ("hidden_size", dict(hidden_size=0)),
                                          ("num_layers", dict(num_layers=0))])
def test_bad_size_error_names_the_argument(name, kwargs):
    args = dict(vocab_size=V, hidden_size=4) | kwargs
    with pytest.raises(ValueError, match=f"^{name} must be a positive integer, got 0$"):
        CharRNN(**args)


@pytest.mark.parametrize("embed_dim", [0, 2.5, True])
def test_embed_dim_must_be_a_positive_integer(embed_dim):
    with pytest.raises(ValueError, match="embed_dim must be None .one-hot inputs. or a positive integer"):
        CharRNN(V, 4, embed_dim=embed_dim)


def test_dropout_error_states_the_range():
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\), got 1.0"):
        CharRNN(V, 4, dropout=1.0)


def test_dropout_reaches_the_recurrent_layer_only_when_stacked():
    assert CharRNN(V, 4, "gru", num_layers=2, dropout=0.3).rnn.dropout == 0.3
    assert CharRNN(V, 4, "gru", num_layers=1, dropout=0.3).rnn.dropout == 0.0  # torch warns otherwise
    assert CharRNN(V, 4, "gru", num_layers=1, dropout=0.3).drop.p == 0.3       # the head still gets it


def test_empty_batch_is_a_clear_error():
    model = CharRNN(V, 4, "gru")
    with pytest.raises(ValueError, match=r"empty batch or sequence: ids of shape \(0, 3\)"):
        model(torch.zeros(0, 3, dtype=torch.long))


def test_non_tensor_ids_error_names_the_type():
    with pytest.raises(ValueError, match=r"expected ids of shape \(batch, time\), got list"):
        CharRNN(V, 4, "gru")([[1, 2, 3]])


def test_lstm_state_of_three_tensors_is_rejected():
    model = CharRNN(V, 8, cell="lstm")
    h = torch.zeros(1, 2, 8)
    with pytest.raises(ValueError, match=r"^an LSTM state must be a pair \(h, c\)"):
        model(_ids(2, 3), (h, h, h))


def test_non_tensor_state_error_names_the_type():
    model = CharRNN(V, 8, cell="gru")
    with pytest.raises(ValueError, match=r"= \(1, 2, 8\), got list$"):
        model(_ids(2, 3), [[0.0] * 8] * 2)


def test_extra_repr_shows_cell_and_parameter_count():
    model = CharRNN(V, 13, "lstm")
    assert model.extra_repr() == f"cell='lstm', parameters={param_count('lstm', V, 13):,}"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_hidden_for_params_accepts_the_smallest_model_exactly(cell):
    smallest = param_count(cell, V, 1, 2, 3)
    assert hidden_for_params(cell, V, smallest, 2, 3) == 1
    assert hidden_for_params(cell, V, smallest + 1, 2, 3) == 1  # closer to width 1 than to width 2
    with pytest.raises(ValueError, match=f"smaller than the smallest {cell} model .{smallest} parameters."):
        hidden_for_params(cell, V, smallest - 1, 2, 3)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_hidden_for_params_counts_the_embedding(cell):
    """With an embedding (V=103 one-hot vs embed_dim=8) the chosen width is the closest for that model."""
    target = 60_000
    h = hidden_for_params(cell, 103, target, num_layers=2, embed_dim=8)
    got = param_count(cell, 103, h, 2, 8)
    for other in (h - 1, h + 1):
        assert abs(param_count(cell, 103, other, 2, 8) - target) >= abs(got - target)
    assert h != hidden_for_params(cell, 103, target, num_layers=2)  # one-hot inputs cost more: narrower
