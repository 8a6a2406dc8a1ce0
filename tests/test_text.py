"""Tests for dlcore.text: splits, batches, evaluation, temperature sampling, generation, n-gram counts."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlcore import text
from dlcore.device import make_generator

# ---------------------------------------------------------------- splits and batches

def test_split_ids_is_contiguous_with_val_tail():
    ids = np.arange(1000)
    tr, va = text.split_ids(ids, val_fraction=0.1)
    assert len(tr) == 900 and len(va) == 100
    np.testing.assert_array_equal(np.concatenate([tr, va]), ids)


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5])
def test_split_ids_rejects_fraction_outside_open_unit_interval(frac):
    with pytest.raises(ValueError, match="between 0 and 1"):
        text.split_ids(np.arange(10), val_fraction=frac)


def test_lm_batch_shapes_dtype_and_shift():
    ids = np.arange(500) % 37
    x, y = text.lm_batch(ids, batch_size=8, seq_len=16, generator=make_generator(0))
    assert x.shape == y.shape == (8, 16)
    assert x.dtype == y.dtype == torch.int64
    # y is x shifted by one: y[:, :-1] == x[:, 1:], and each window is a real slice of ids
    assert torch.equal(y[:, :-1], x[:, 1:])
    data = torch.as_tensor(ids)
    for row_x, row_y in zip(x, y):
        matches = [t for t in range(len(ids) - 16) if torch.equal(data[t:t + 16], row_x)]
        assert matches, "x is not a window of ids"
        t = matches[0]
        assert torch.equal(data[t + 1:t + 17], row_y)


def test_lm_batch_window_covers_last_target():
    ids = np.arange(11)  # seq_len 10: the only window is ids[0:10] -> ids[1:11]
    x, y = text.lm_batch(ids, batch_size=4, seq_len=10, generator=make_generator(0))
    assert torch.equal(x, torch.arange(10).repeat(4, 1))
    assert torch.equal(y, torch.arange(1, 11).repeat(4, 1))


def test_lm_batch_is_repeatable_with_a_seeded_generator():
    ids = np.arange(10_000)
    a = text.lm_batch(ids, 4, 8, make_generator(3))[0]
    b = text.lm_batch(ids, 4, 8, make_generator(3))[0]
    c = text.lm_batch(ids, 4, 8, make_generator(4))[0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("seq_len", [10, 11, 50])
def test_lm_batch_rejects_seq_len_too_long(seq_len):
    with pytest.raises(ValueError, match="seq_len"):
        text.lm_batch(np.arange(10), 2, seq_len, make_generator(0))


# ---------------------------------------------------------------- evaluation

class Uniform(nn.Module):
    """Predicts all-zero logits: the uniform distribution, NLL = ln V for every target."""

    def __init__(self, V):
        super().__init__()
        self.V = V
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx, state=None):
        return torch.zeros(*idx.shape, self.V) + 0 * self.dummy, state


class Bigram(nn.Module):
    def __init__(self, logp):
        super().__init__()
        self.table = nn.Parameter(torch.as_tensor(logp, dtype=torch.float64))

    def forward(self, idx):
        return self.table[idx]


@pytest.mark.parametrize("n", [2, 129, 1000, 1001])
def test_evaluate_lm_uniform_model_gives_ln_v(n):
    V = 17
    ids = np.random.default_rng(0).integers(0, V, n)
    model = Uniform(V).train()
    nll = text.evaluate_lm(model, ids, seq_len=128, batch_size=3)
    assert nll == pytest.approx(math.log(V), abs=1e-9)
    assert model.training, "evaluate_lm must restore training mode"


def test_evaluate_lm_scores_every_target_once_and_matches_direct_sum():
    V = 5
    rng = np.random.default_rng(1)
    logp = np.log(rng.dirichlet(np.ones(V), size=V))
    ids = rng.integers(0, V, 777)
    direct = -np.mean(logp[ids[:-1], ids[1:]])
    model = Bigram(logp)
    for seq_len, bs in [(1, 1), (10, 4), (128, 64), (776, 2), (5000, 1)]:
        assert text.evaluate_lm(model, ids, seq_len=seq_len, batch_size=bs) == pytest.approx(direct, abs=1e-9)


def test_evaluate_lm_keeps_eval_mode_when_model_was_in_eval():
    model = Uniform(3).eval()
    text.evaluate_lm(model, np.array([0, 1, 2, 1]))
    assert not model.training


# ---------------------------------------------------------------- sampling

def test_temperature_zero_is_argmax():
    logits = torch.randn(50, 13, generator=make_generator(0))
    assert torch.equal(text.sample_next(logits, 0.0), logits.argmax(dim=1))
    # a tiny positive temperature gives the argmax too (and no NaN from logits / T overflowing)
    assert torch.equal(text.sample_next(logits * 1e3, 1e-30, make_generator(1)), logits.argmax(dim=1))


def test_seeded_sampling_is_reproducible():
    logits = torch.zeros(200, 30)
    a = text.sample_next(logits, 1.0, make_generator(7))
    b = text.sample_next(logits, 1.0, make_generator(7))
    c = text.sample_next(logits, 1.0, make_generator(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0])
def test_sampling_frequencies_match_tempered_softmax(T):
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5])
    n = 200_000
    ids = text.sample_next(logits.repeat(n, 1), T, make_generator(0))
    freq = torch.bincount(ids, minlength=5).double()
    p = torch.softmax(logits.double() / T, dim=0)
    expected = n * p
    chi2 = float(((freq - expected) ** 2 / expected).sum())
    # 4 degrees of freedom: P(chi2 > 25) is about 5e-5
    assert chi2 < 25.0, (chi2, freq / n, p)


def test_top_k_only_draws_the_k_largest():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.9, -5.0]]).repeat(2000, 1)
    ids = text.sample_next(logits, 5.0, make_generator(0), top_k=2)
    assert set(ids.tolist()) == {1, 3}
    assert torch.equal(text.sample_next(logits, 1.0, make_generator(0), top_k=1), torch.ones(2000, dtype=torch.long))


def test_masked_minus_inf_logits_are_never_drawn():
    logits = torch.tensor([[0.0, float("-inf"), 0.0]]).repeat(1000, 1)
    ids = text.sample_next(logits, 1.0, make_generator(0))
    assert (ids != 1).all()


@pytest.mark.parametrize("T", [-0.1, float("nan"), float("inf")])
def test_bad_temperature_raises(T):
    with pytest.raises(ValueError, match="temperature"):
        text.sample_next(torch.zeros(2, 3), T)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_posinf_logits_raise(bad):
    logits = torch.zeros(2, 3)
    logits[1, 2] = bad
    with pytest.raises(ValueError, match="NaN"):
        text.sample_next(logits, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        text.sample_next(logits, 0.0)


def test_bad_logits_shape_and_top_k_raise():
    with pytest.raises(ValueError, match="batch, vocab"):
        text.sample_next(torch.zeros(5), 1.0)
    with pytest.raises(ValueError, match="finite"):
        text.sample_next(torch.full((1, 3), float("-inf")), 1.0)
    with pytest.raises(ValueError, match="top_k"):
        text.sample_next(torch.zeros(1, 3), 1.0, top_k=0)


# ---------------------------------------------------------------- generation

class Counter(nn.Module):
    """A stateful toy: the state counts the tokens seen so far; it predicts id (count mod V) for sure."""

    def __init__(self, V=7):
        super().__init__()
        self.V = V
        self.calls = []
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx, state=None):
        self.calls.append((idx.shape[1], None if state is None else int(state)))
        count = 0 if state is None else int(state)
        T = idx.shape[1]
        counts = count + torch.arange(1, T + 1)
        logits = torch.full((idx.shape[0], T, self.V), -1e9)
        logits[:, torch.arange(T), counts % self.V] = 0.0
        return logits + 0 * self.dummy, torch.tensor(count + T)


def test_generate_feeds_prompt_once_then_carries_state():
    model = Counter(V=7).train()
    out = text.generate(model, [3, 3, 3], steps=6, temperature=1.0, generator=make_generator(0))
    assert out.shape == (1, 9) and out.dtype == torch.int64
    # after k tokens the state is k, so the next id is k mod 7: 3, 4, 5, 6, 0, 1
    assert out[0].tolist() == [3, 3, 3, 3, 4, 5, 6, 0, 1]
    # prompt fed once (3 tokens, no state), then single tokens with state 3, 4, 5, 6, 7
    assert model.calls == [(3, None), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7)]
    assert model.training, "generate must restore training mode"


def test_generate_greedy_and_seeded_are_repeatable():
    torch.manual_seed(0)
    emb = nn.Embedding(11, 11)

    class RandomLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(11, 16, batch_first=True)
            self.head = nn.Linear(16, 11)

        def forward(self, idx, state=None):
            h, state = self.rnn(emb(idx), state)
            return self.head(h), state

    m = RandomLM()
    a = text.generate(m, torch.tensor([1, 2]), 40, 1.0, make_generator(5))
    b = text.generate(m, torch.tensor([[1, 2]]), 40, 1.0, make_generator(5))
    c = text.generate(m, np.array([1, 2]), 40, 1.0, make_generator(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1 = text.generate(m, [1, 2], 10, temperature=0.0)
    g2 = text.generate(m, [1, 2], 10, temperature=0.0)
    assert torch.equal(g1, g2)
    assert text.generate(m, [4], 0).tolist() == [[4]]


def test_generate_rejects_empty_prompt_and_negative_steps():
    with pytest.raises(ValueError, match="non-empty prompt"):
        text.generate(Counter(), [], 5)
    with pytest.raises(ValueError, match="non-empty prompt"):
        text.generate(Counter(), torch.zeros(0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="steps"):
        text.generate(Counter(), [1], -1)


# ---------------------------------------------------------------- n-grams and perplexity

def test_bigram_counts_match_dense_add_alpha_formula():
    V, alpha = 6, 0.5
    rng = np.random.default_rng(0)
    tr, va = rng.integers(0, V, 3000), rng.integers(0, V, 500)
    N = np.zeros((V, V))
    np.add.at(N, (tr[:-1], tr[1:]), 1)
    P = (N + alpha) / (N.sum(1, keepdims=True) + alpha * V)
    expected = -np.mean(np.log(P[va[:-1], va[1:]]))
    assert text.ngram_nll(tr, va, 2, V, alpha) == pytest.approx(expected, rel=1e-12)
    lm = text.NGramLM(2, V, alpha).fit(tr)
    np.testing.assert_allclose(np.exp(lm.next_log_probs([0, 1, 3])), P[3], rtol=1e-12)


def test_unigram_and_unseen_context_fall_back_correctly():
    V = 4
    tr = np.array([0, 0, 0, 1])
    lm = text.NGramLM(1, V, alpha=1.0).fit(tr)
    np.testing.assert_allclose(np.exp(lm.next_log_probs([])), np.array([4, 2, 1, 1]) / 8)
    tri = text.NGramLM(3, V, alpha=1.0).fit(tr)
    np.testing.assert_allclose(np.exp(tri.next_log_probs([3, 3])), np.full(V, 1 / V))  # unseen context
    assert np.exp(tri.next_log_probs([0, 0])).sum() == pytest.approx(1.0)


def test_higher_order_ngram_fits_training_text_better():
    ids = text.CharTokenizer("abcab" * 50).encode("abcab" * 50)
    nlls = [text.ngram_nll(ids, ids, n, 3, alpha=0.01) for n in (1, 2, 4)]
    assert nlls[0] > nlls[1] > nlls[2] + 0.2  # "ab" is followed by c or a; 3 ids of context decide


def test_ngram_bad_input_raises():
    with pytest.raises(ValueError, match="alpha"):
        text.NGramLM(2, 5, alpha=0.0)
    with pytest.raises(ValueError, match="n must"):
        text.NGramLM(0, 5)
    with pytest.raises(ValueError, match="lie in"):
        text.NGramLM(2, 5).fit(np.array([0, 5, 1]))
    with pytest.raises(ValueError, match="fit"):
        text.NGramLM(2, 5).nll(np.array([0, 1]))
    with pytest.raises(ValueError, match="context ids"):
        text.NGramLM(3, 5).fit(np.array([0, 1, 2, 3])).next_log_probs([1, 5])


def test_perplexity_of_uniform_is_vocab_size():
    assert text.perplexity(math.log(103)) == pytest.approx(103)
    assert torch.allclose(text.perplexity(torch.tensor([0.0])), torch.tensor([1.0]))


def test_reexports_tokenizer_and_corpus():
    assert text.CharTokenizer is __import__("dlcore.data", fromlist=["x"]).CharTokenizer
    corpus = text.load_text("pydoc")
    tok = text.CharTokenizer(corpus)
    assert tok.decode(tok.encode(corpus[:100])) == corpus[:100]


# ---------------------------------------------------------------- boundaries, defaults and messages

def test_split_ids_default_fraction_and_smallest_splits():
    tr, va = text.split_ids(np.arange(100))
    assert len(tr) == 90 and len(va) == 10  # val_fraction defaults to 0.1
    tr, va = text.split_ids(np.arange(2), 0.5)  # one id each is enough
    assert tr.tolist() == [0] and va.tolist() == [1]
    for n, frac in [(1, 0.5), (5, 0.05)]:  # an empty train part, an empty validation part
        with pytest.raises(ValueError, match=rf"^{n} ids are too few to split with val_fraction={frac}$"):
            text.split_ids(np.arange(n), frac)


def test_ids_must_be_a_1d_integer_sequence():
    with pytest.raises(ValueError, match=r"^ids must be a 1-D sequence of token ids, got shape \(2, 3\)$"):
        text.split_ids(np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match=r"^ids must hold integer token ids, got dtype float64$"):
        text.split_ids(np.zeros(10))


def test_lm_batch_smallest_sizes_messages_and_device():
    x, y = text.lm_batch(np.arange(2), batch_size=1, seq_len=1, generator=make_generator(0))
    assert x.tolist() == [[0]] and y.tolist() == [[1]]
    for b, t in [(0, 4), (2, 0)]:
        with pytest.raises(ValueError, match=rf"^batch_size and seq_len must be positive, got {b} and {t}$"):
            text.lm_batch(np.arange(10), b, t)
    with pytest.raises(ValueError, match=r"^seq_len=10 needs at least 11 ids"):
        text.lm_batch(np.arange(10), 2, 10)
    x, y = text.lm_batch(np.arange(20), 2, 4, make_generator(0), device="meta")  # moved, not computed
    assert x.device.type == y.device.type == "meta"


def test_device_follows_the_model_and_falls_back_to_cpu():
    assert text._device_of(nn.Linear(2, 2).to("meta"), None).type == "meta"
    assert text._device_of(nn.Linear(2, 2), "meta").type == "meta"
    assert text._device_of(lambda x: x, None) == torch.device("cpu")  # a plain function has no parameters
    V = 4
    nll = text.evaluate_lm(lambda x: torch.zeros(*x.shape, V), np.array([0, 1, 2, 3, 0]), seq_len=2)
    assert nll == pytest.approx(math.log(V))


def test_sample_next_defaults_and_plain_lists():
    logits = torch.randn(300, 6, generator=make_generator(2))
    assert torch.equal(text.sample_next(logits, generator=make_generator(3)),
                       text.sample_next(logits, 1.0, make_generator(3)))  # temperature defaults to 1
    assert text.sample_next([[0.0, 5.0, 0.0]], 0.0).tolist() == [1]  # a list of rows is accepted
    ids = text.sample_next(logits, 1.0)  # no generator: torch's global one
    assert ids.shape == (300,) and int(ids.min()) >= 0 and int(ids.max()) < 6


def test_extreme_temperature_never_overflows_to_nan():
    logits = torch.tensor([[0.0, 1000.0, -3.0]])  # float32: (logits + max) / 1e-38 would be +inf
    assert text.sample_next(logits, 1e-38, make_generator(0)).tolist() == [1]


def test_one_row_without_finite_logits_is_rejected_and_messages_are_exact():
    with pytest.raises(ValueError, match=r"^every row of logits needs at least one finite entry$"):
        text.sample_next(torch.tensor([[0.0, 1.0], [float("-inf"), float("-inf")]]), 1.0)
    with pytest.raises(ValueError, match=r"^logits contain NaN or \+inf$"):
        text.sample_next(torch.tensor([[0.0, float("nan")]]), 1.0)


def test_trigram_counts_match_dense_add_alpha_formula():
    V, alpha = 4, 0.5
    rng = np.random.default_rng(1)
    tr, va = rng.integers(0, V, 4000), rng.integers(0, V, 300)
    N = np.zeros((V, V, V))
    np.add.at(N, (tr[:-2], tr[1:-1], tr[2:]), 1)
    P = (N + alpha) / (N.sum(2, keepdims=True) + alpha * V)
    expected = -np.mean(np.log(P[va[:-2], va[1:-1], va[2:]]))
    assert text.ngram_nll(tr, va, 3, V, alpha) == pytest.approx(expected, rel=1e-12)
    lm = text.NGramLM(3, V, alpha).fit(tr)
    np.testing.assert_allclose(np.exp(lm.next_log_probs([0, 2, 1])), P[2, 1], rtol=1e-12)
    # alpha defaults to 1 (add-one smoothing)
    assert text.ngram_nll(tr, va, 3, V) == pytest.approx(text.ngram_nll(tr, va, 3, V, 1.0), rel=1e-15)
    assert text.NGramLM(3, V).alpha == 1.0


def test_pairs_that_differ_in_one_id_never_share_a_code():
    V, n = 1000, 6  # (context, next id) codes near 1e18: beyond float64's exact integers (2**53)
    lm = text.NGramLM(n, V).fit([999] * 5 + [0])
    seen, unseen = lm.log_prob([999] * 5 + [0])[0], lm.log_prob([999] * 5 + [1])[0]
    assert seen == pytest.approx(np.log(2 / (1 + V)))
    assert unseen == pytest.approx(np.log(1 / (1 + V)))  # the context was seen, this pair was not


def test_ngram_size_limits_and_messages():
    assert np.exp(text.NGramLM(1, 1).fit([0]).log_prob([0, 0])).tolist() == [1.0, 1.0]  # V = 1 is allowed
    text.NGramLM(61, 2)  # 2**61 codes fit in int64
    with pytest.raises(ValueError, match=r"^n=62 with vocab_size=2 overflows the int64 context codes$"):
        text.NGramLM(62, 2)
    with pytest.raises(ValueError, match=r"^vocab_size must be positive, got 0$"):
        text.NGramLM(2, 0)
    lm = text.NGramLM(2, 5)
    with pytest.raises(ValueError, match=r"^call fit\(train_ids\) before scoring$"):
        lm.log_prob([0, 1])
    with pytest.raises(ValueError, match=r"^call fit\(train_ids\) before scoring$"):
        lm.next_log_probs([0])
    lm.fit([0, 1])  # exactly n ids are enough
    with pytest.raises(ValueError, match=r"^ids needs at least n=2 ids, got 1$"):
        lm.fit([0])
    with pytest.raises(ValueError, match=r"^ids must lie in \[0, 5\), got range \[0, 5\]$"):
        lm.fit([0, 5])
    with pytest.raises(ValueError, match=r"^ids must lie in \[0, 5\)"):
        lm.log_prob([0, 5])
    with pytest.raises(ValueError, match=r"^ids must be a 1-D sequence"):
        lm.fit(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match=r"^context must be a 1-D sequence"):
        lm.next_log_probs([[0]])
    with pytest.raises(ValueError, match=r"^context must hold integer token ids"):
        lm.next_log_probs([0, 1.7])  # not silently truncated to id 1
    tri = text.NGramLM(3, 5).fit([0, 1, 2])
    with pytest.raises(ValueError, match=r"^an 3-gram needs a context of 2 ids, got 1$"):
        tri.next_log_probs([1])
    with pytest.raises(ValueError, match=r"got \[1, 5\]$"):
        tri.next_log_probs([0, 1, 5])


def test_perplexity_of_an_array():
    np.testing.assert_allclose(text.perplexity(np.log(np.array([2.0, 7.0]))), [2.0, 7.0])
