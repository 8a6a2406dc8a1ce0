"""Tests for dlcore.models.seq2seq: shapes, greedy decoding, the reversal task, errors, and that it learns."""
import pytest
import torch
import torch.nn.functional as F

from dlcore.models.seq2seq import Seq2Seq, greedy_decode, make_reversal, sequence_accuracy, shift_right

CELLS = ["rnn", "lstm", "gru"]
BOS = 10


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_of_encode_forward_and_greedy_decode(cell):
    torch.manual_seed(0)
    m = Seq2Seq(11, hidden_size=8, cell=cell, embed_dim=5)
    src, tgt = make_reversal(4, 6, seed=1)
    enc_states, state = m.encode(src)
    assert enc_states.shape == (4, 6, 8)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (1, 4, 8)
    assert m(src, shift_right(tgt, BOS)).shape == (4, 6, 11)
    assert m(src, shift_right(tgt, BOS)[:, :3]).shape == (4, 3, 11)   # target length need not equal source's
    assert greedy_decode(m, src, 9, BOS).shape == (4, 9)


@pytest.mark.parametrize("cell", CELLS)
def test_greedy_decode_is_argmax_of_teacher_forcing_on_its_own_outputs(cell):
    torch.manual_seed(1)
    m = Seq2Seq(11, hidden_size=16, cell=cell)
    src, _ = make_reversal(32, 7, seed=2)
    out = m.greedy_decode(src, 7, BOS)
    with torch.no_grad():
        logits = m(src, shift_right(out, BOS))
    assert torch.equal(logits.argmax(-1), out)


def test_decode_step_loop_equals_fused_decode():
    torch.manual_seed(2)
    m = Seq2Seq(11, hidden_size=12)
    src, tgt = make_reversal(5, 6, seed=3)
    tgt_in = shift_right(tgt, BOS)
    enc_states, state = m.encode(src)
    fused, _ = m.decode(tgt_in, state, enc_states)
    steps = []
    for t in range(tgt_in.shape[1]):
        logits, state = m.decode_step(tgt_in[:, t], state, enc_states)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), fused, rtol=1e-5, atol=1e-6)


def test_greedy_decode_restores_training_mode_and_does_not_track_gradients():
    m = Seq2Seq(11, hidden_size=4)
    m.train()
    out = m.greedy_decode(make_reversal(2, 3)[0], 3, BOS)
    assert m.training and not out.requires_grad
    m.eval()
    m.greedy_decode(make_reversal(2, 3)[0], 3, BOS)
    assert not m.training


def test_make_reversal_reverses_and_is_seeded():
    src, tgt = make_reversal(200, 9, num_symbols=7, seed=5)
    assert src.shape == tgt.shape == (200, 9) and src.dtype == tgt.dtype == torch.int64
    assert int(src.min()) == 0 and int(src.max()) == 6
    for i in range(9):
        assert torch.equal(tgt[:, i], src[:, 8 - i])
    again, _ = make_reversal(200, 9, num_symbols=7, seed=5)
    other, _ = make_reversal(200, 9, num_symbols=7, seed=6)
    assert torch.equal(src, again) and not torch.equal(src, other)


def test_shift_right_and_sequence_accuracy():
    tgt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert torch.equal(shift_right(tgt, 9), torch.tensor([[9, 1, 2], [9, 4, 5]]))
    pred = torch.tensor([[1, 2, 3], [4, 0, 6]])
    exact, per_token = sequence_accuracy(pred, tgt)
    assert exact == pytest.approx(0.5) and per_token == pytest.approx(5 / 6)


def test_learns_short_reversals():
    """A width-32 GRU pair learns to reverse 3 digits in 300 steps: the encoder state reaches the decoder."""
    torch.manual_seed(0)
    m = Seq2Seq(11, hidden_size=32)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    src_tr, tgt_tr = make_reversal(300 * 32, 3, seed=1)
    for i in range(300):
        src, tgt = src_tr[i * 32:(i + 1) * 32], tgt_tr[i * 32:(i + 1) * 32]
        loss = F.cross_entropy(m(src, shift_right(tgt, BOS)).reshape(-1, 11), tgt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    src, tgt = make_reversal(500, 3, seed=99)
    exact, _ = sequence_accuracy(m.greedy_decode(src, 3, BOS), tgt)
    assert exact > 0.9


def test_bad_input_raises_clear_errors():
    m = Seq2Seq(11, hidden_size=4)
    src, tgt = make_reversal(2, 3)
    with pytest.raises(ValueError, match="cell must be 'rnn', 'lstm' or 'gru'"):
        Seq2Seq(11, cell="transformer")
    with pytest.raises(ValueError, match="empty sequence"):
        m(src[:, :0], shift_right(tgt, BOS))
    with pytest.raises(ValueError, match="empty sequence"):
        m(src, shift_right(tgt, BOS)[:, :0])
    with pytest.raises(ValueError, match=r"outside \[0, 11\)"):
        m(src + 11, shift_right(tgt, BOS))
    with pytest.raises(ValueError, match=r"outside \[0, 11\)"):
        m(src, shift_right(tgt, BOS) - 20)
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        m(src[0], shift_right(tgt, BOS))
    with pytest.raises(ValueError, match="integer token ids"):
        m(src.float(), shift_right(tgt, BOS))
    with pytest.raises(ValueError, match="same batch size"):
        m(src, shift_right(tgt, BOS)[:1])
    with pytest.raises(ValueError, match="length must be >= 1"):
        m.greedy_decode(src, 0, BOS)
    with pytest.raises(ValueError, match="bos must be a token id"):
        m.greedy_decode(src, 3, 11)
    with pytest.raises(ValueError, match="length must be >= 1"):
        make_reversal(5, 0)
    with pytest.raises(ValueError, match="num_symbols"):
        make_reversal(5, 3, num_symbols=1)
    with pytest.raises(ValueError, match="same shape"):
        sequence_accuracy(src, tgt[:, :2])


class _MeanContextSeq2Seq(Seq2Seq):
    """A stand-in for the next chapter's attention decoder: it adds the mean encoder state to each output."""

    def decode_step(self, y_prev, state, enc_states):
        assert enc_states.ndim == 3                      # all encoder states reach the decoder
        h, state = self.decoder(self.tgt_embed(y_prev.reshape(-1, 1)), state)
        return self.out(h[:, 0] + enc_states.mean(1)), state

    def decode(self, tgt_in, state, enc_states):
        steps = []
        for t in range(tgt_in.shape[1]):
            logits, state = self.decode_step(tgt_in[:, t], state, enc_states)
            steps.append(logits)
        return torch.stack(steps, 1), state


def test_subclass_with_its_own_decode_step_is_used_by_forward_and_greedy_decode():
    """The extension point for attention: encode/decode/decode_step are the only hooks forward and greedy use."""
    torch.manual_seed(4)
    base = Seq2Seq(11, hidden_size=8)
    sub = _MeanContextSeq2Seq(11, hidden_size=8)
    sub.load_state_dict(base.state_dict())
    src, tgt = make_reversal(6, 5, seed=7)
    with torch.no_grad():
        assert not torch.allclose(sub(src, shift_right(tgt, BOS)), base(src, shift_right(tgt, BOS)))
        out = sub.greedy_decode(src, 5, BOS)
        assert torch.equal(sub(src, shift_right(out, BOS)).argmax(-1), out)


# ---------------------------------------------------------------- boundaries, defaults and messages

def test_decode_step_passes_the_encoder_states_to_decode():
    """A subclass that overrides only ``decode`` (an attention decoder) still gets every encoder state."""

    class NeedsContext(Seq2Seq):
        def decode(self, tgt_in, state, enc_states):
            assert isinstance(enc_states, torch.Tensor) and enc_states.shape == (2, 3, 4)
            return super().decode(tgt_in, state, enc_states)

    src, _ = make_reversal(2, 3)
    assert NeedsContext(11, hidden_size=4).greedy_decode(src, 2, BOS).shape == (2, 2)


def test_smallest_valid_sizes_and_defaults():
    m = Seq2Seq(2, hidden_size=1)  # vocab 2 and hidden 1 are allowed
    assert m(torch.ones(1, 1, dtype=torch.long), torch.ones(1, 1, dtype=torch.long)).shape == (1, 1, 2)
    assert Seq2Seq(11).hidden_size == 128
    m = Seq2Seq(11, hidden_size=8, embed_dim=4)
    assert m.src_embed.embedding_dim == m.tgt_embed.embedding_dim == m.encoder.input_size == 4
    for vocab, hidden in [(1, 4), (11, 0)]:
        message = rf"^vocab_size must be >= 2 and hidden_size >= 1, got {vocab} and {hidden}$"
        with pytest.raises(ValueError, match=message):
            Seq2Seq(vocab, hidden_size=hidden)
    src, tgt = make_reversal(1, 1, num_symbols=2)  # n = length = 1 and two symbols are allowed
    assert src.shape == (1, 1) and torch.equal(src, tgt)
    assert torch.equal(make_reversal(4, 5)[0], make_reversal(4, 5, num_symbols=10, seed=0)[0])
    assert int(make_reversal(500, 4)[0].max()) == 9  # ten digits by default; id 10 stays free for BOS


def test_id_equal_to_vocab_size_is_rejected_and_messages_name_the_input():
    m = Seq2Seq(11, hidden_size=4)
    ok = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^src holds token ids outside \[0, 11\): min 0, max 11$"):
        m(torch.tensor([[0, 11, 3], [1, 2, 3]]), ok)
    with pytest.raises(ValueError, match=r"^tgt_in holds token ids outside"):
        m(ok, torch.full((2, 3), 11))
    with pytest.raises(ValueError, match=r"^src holds token ids outside"):
        m.encode(torch.full((2, 3), 11))
    with pytest.raises(ValueError, match=r"^expected src of shape \(batch, time\) holding token ids, got \(3,\)$"):
        m.encode(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"got list$"):
        m.encode([[1, 2]])
    with pytest.raises(ValueError, match=r"same batch size, got 2 and 1$"):
        m(ok, ok[:1, :2])


def test_shift_right_of_a_single_token_and_bad_shapes():
    assert torch.equal(shift_right(torch.tensor([[5], [6]]), 9), torch.tensor([[9], [9]]))
    with pytest.raises(ValueError, match=r"^expected tgt of shape \(batch, time\) with time >= 1, got \(3,\)$"):
        shift_right(torch.zeros(3, dtype=torch.long), 9)
    with pytest.raises(ValueError, match=r"with time >= 1, got \(2, 0\)$"):
        shift_right(torch.zeros(2, 0, dtype=torch.long), 9)
