import gzip
import hashlib
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from dlcore import data


# ---------------------------------------------------------------- generated 2-D sets
@pytest.mark.parametrize("name", sorted(data.TOY_2D))
def test_toy_sets_have_documented_shapes_and_are_seeded(name):
    X, y = data.make_toy(name, n=120, seed=3)
    assert X.shape == (120, 2) and X.dtype == np.float32
    assert y.shape == (120,) and y.dtype == np.int64
    X2, y2 = data.make_toy(name, n=120, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X3, _ = data.make_toy(name, n=120, seed=4)
    assert not np.array_equal(X, X3)


def test_binary_toy_sets_are_balanced():
    for name in ("moons", "circles"):
        _, y = data.make_toy(name, n=200)
        assert np.bincount(y).tolist() == [100, 100]


def test_xor_labels_follow_the_quadrant():
    X, y = data.make_xor(n=400, noise=0.05)
    assert np.array_equal(y, ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64))


def test_ring_has_k_modes_on_the_circle():
    X, y = data.make_ring(n=800, k=8, radius=2.0, std=0.01)
    assert set(np.unique(y)) == set(range(8))
    assert np.allclose(np.linalg.norm(X, axis=1), 2.0, atol=0.05)


def test_spirals_support_several_classes():
    _, y = data.make_spirals(n=301, classes=3)
    assert np.bincount(y).tolist() == [101, 100, 100]


def test_unknown_toy_set_names_the_choices():
    with pytest.raises(ValueError, match="unknown 2-D data set 'banana'.*moons"):
        data.make_toy("banana")


@pytest.mark.parametrize("call", [lambda: data.make_moons(n=0), lambda: data.make_circles(factor=1.5),
                                  lambda: data.make_spirals(classes=1), lambda: data.make_ring(k=0),
                                  lambda: data.make_xor(n=2.5)])
def test_toy_sets_reject_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------- splits and loaders
def test_split_is_disjoint_stratified_and_seeded():
    X = np.arange(1000, dtype=np.float32)[:, None]
    y = np.repeat(np.arange(4), 250)
    s = data.train_val_test_split(X, y, val=0.2, test=0.2, seed=1)
    assert s.sizes() == {"train": 600, "val": 200, "test": 200}
    ids = np.concatenate([s.X_train[:, 0], s.X_val[:, 0], s.X_test[:, 0]])
    assert len(np.unique(ids)) == 1000
    assert np.bincount(s.y_test).tolist() == [50] * 4
    s2 = data.train_val_test_split(X, y, val=0.2, test=0.2, seed=1)
    assert np.array_equal(s.X_train, s2.X_train)
    assert s.n_classes == 4


def test_split_rejects_bad_fractions_and_lengths():
    with pytest.raises(ValueError, match="same length"):
        data.train_val_test_split(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="val \\+ test < 1"):
        data.train_val_test_split(np.zeros((5, 2)), np.zeros(5), val=0.6, test=0.5)


def test_split_never_returns_empty_val_or_test_silently():
    X = np.arange(40, dtype=np.float32)[:, None]
    y_cont = np.linspace(0.0, 1.0, 40)  # regression targets: every value unique
    with pytest.raises(ValueError, match="continuous.*stratify=False"):
        data.train_val_test_split(X, y_cont, stratify=True)
    s = data.train_val_test_split(X, y_cont)  # default: stratify only where it makes sense
    assert s.sizes() == {"train": 28, "val": 6, "test": 6}
    assert np.array_equal(np.sort(np.r_[s.y_train, s.y_val, s.y_test]), y_cont)
    y_rare = np.r_[np.zeros(37, dtype=np.int64), [1, 1, 2]]  # classes 1 and 2 are too rare to stratify
    with pytest.raises(ValueError, match="class 1 has only 2 example"):
        data.train_val_test_split(X, y_rare, stratify=True)
    s = data.train_val_test_split(X, y_rare)
    assert s.sizes() == {"train": 28, "val": 6, "test": 6}
    s = data.train_val_test_split(X, np.arange(40) % 4)  # 10 per class: stratified, as before
    assert np.bincount(s.y_val).tolist() == [2] * 4 and np.bincount(s.y_test).tolist() == [2] * 4
    with pytest.raises(ValueError, match="val fraction 0.1 of 4 examples.*no example"):
        data.train_val_test_split(X[:4], np.arange(4), val=0.1, test=0.5, stratify=False)
    s = data.train_val_test_split(X[:4], np.arange(4), val=0.0, test=0.5, stratify=False)
    assert s.sizes() == {"train": 2, "val": 0, "test": 2}


def test_split_default_matches_the_stratified_split_on_class_labels():
    X = np.arange(1000, dtype=np.float32)[:, None]
    y = np.repeat(np.arange(4), 250)
    a = data.train_val_test_split(X, y, val=0.2, test=0.2, seed=3)
    b = data.train_val_test_split(X, y, val=0.2, test=0.2, seed=3, stratify=True)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("X_train", "X_val", "X_test"))


@pytest.mark.parametrize("bad", [1.5, -0.1, 1.0, float("nan"), "0.1"])
def test_fractions_outside_0_1_are_rejected_everywhere(bad, tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="val must be a fraction in \\[0, 1\\)"):
        data.load_mnist1d(num_samples=500, val=bad)
    with pytest.raises(ValueError, match="val must be a fraction"):
        data.load_mnist(val=bad)
    with pytest.raises(ValueError, match="val must be a fraction"):
        data.load_cifar10(val=bad)
    with pytest.raises(ValueError, match="val and test must be fractions"):
        data.train_val_test_split(np.zeros((5, 1)), np.zeros(5), val=bad)


def test_n_classes_of_label_free_splits_is_a_clear_error():
    empty = np.zeros(0, dtype=np.int64)
    s = data.Splits(np.zeros((0, 2)), empty, np.zeros((0, 2)), empty, np.zeros((0, 2)), empty)
    with pytest.raises(ValueError, match="no labels"):
        _ = s.n_classes


def test_splits_as_tensors_keep_values_and_types():
    s = data.load_digits(seed=0, flatten=True).as_tensors()
    assert s.X_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert s.X_train.shape[1] == 64


def test_digits_are_scaled_images():
    s = data.load_digits(seed=0)
    assert s.X_train.shape[1:] == (1, 8, 8)
    assert 0.0 <= s.X_train.min() and s.X_train.max() <= 1.0
    assert sum(s.sizes().values()) == 1797 and s.n_classes == 10


def test_mnist1d_is_generated_cached_and_repeatable(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    np.random.seed(5)
    expected_next = np.random.rand()
    np.random.seed(5)
    a = data.load_mnist1d(num_samples=500)
    assert np.random.rand() == expected_next  # the caller's numpy RNG is left untouched
    cached = list((tmp_path / "mnist1d").glob("*.npz"))
    assert len(cached) == 1
    b = data.load_mnist1d(num_samples=500)  # from the cache
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_test, b.y_test)
    assert a.X_train.shape[1] == 40 and a.sizes() == {"train": 360, "val": 40, "test": 100}
    c = data.load_mnist1d(num_samples=500, cache=False)
    assert np.array_equal(a.X_train, c.X_train)
    with pytest.raises(ValueError, match="num_samples"):
        data.load_mnist1d(num_samples=10)


def test_text_corpus_and_char_tokenizer_round_trip():
    text = data.load_text("pydoc")
    assert len(text) > 400_000
    tok = data.CharTokenizer(text)
    ids = tok.encode(text[:1000])
    assert ids.dtype == np.int64 and tok.decode(ids) == text[:1000]
    assert tok.decode(torch.as_tensor(ids[:10])) == text[:10]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        data.CharTokenizer("abc").encode("abd")
    with pytest.raises(ValueError, match="ids must lie in"):
        data.CharTokenizer("abc").decode([0, 3])
    with pytest.raises(ValueError, match="empty text"):
        data.CharTokenizer("")
    with pytest.raises(ValueError, match="unknown text corpus"):
        data.load_text("shakespeare")


def test_make_loader_batches_and_shuffles_repeatably():
    X, y = np.arange(20, dtype=np.float32)[:, None], np.arange(20)
    first = [b[1].tolist() for b in data.make_loader(X, y, batch_size=8, seed=0)]
    again = [b[1].tolist() for b in data.make_loader(X, y, batch_size=8, seed=0)]
    assert first == again and [len(b) for b in first] == [8, 8, 4]
    assert sorted(sum(first, [])) == list(range(20)) and sum(first, []) != list(range(20))
    ordered = [b[1].tolist() for b in data.make_loader(X, y, batch_size=8, shuffle=False)]
    assert sum(ordered, []) == list(range(20))
    with pytest.raises(ValueError, match="same number of rows"):
        data.make_loader(X, y[:5])
    with pytest.raises(ValueError, match="batch_size"):
        data.make_loader(X, y, batch_size=0)


def test_loaders_for_splits():
    tr, va, te = data.loaders(data.load_digits(flatten=True), batch_size=32)
    xb, yb = next(iter(tr))
    assert xb.shape == (32, 64) and yb.dtype == torch.int64
    assert len(te.dataset) == data.load_digits().sizes()["test"]


def test_load_by_name_dispatches_and_names_choices():
    X, y = data.load("moons", n=50)
    assert X.shape == (50, 2)
    assert data.load("digits").n_classes == 10
    with pytest.raises(ValueError, match="unknown data set 'imagenet'.*mnist1d"):
        data.load("imagenet")


# ---------------------------------------------------------------- opt-in downloads (never the network)
def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _register_fixture(monkeypatch, tmp_path, name: str, files: dict[str, bytes], alg: str = "sha256"):
    """Write fixture files into the cache and register their true hashes (as a real entry would)."""
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    registry = {}
    for fname, content in files.items():
        (folder / fname).write_bytes(content)
        digest = hashlib.new(alg, content).hexdigest()
        registry[fname] = data.RemoteFile(f"https://example.invalid/{fname}", f"{alg}:{digest}")
    monkeypatch.setitem(data.REMOTE, name, registry)


def _fake_mnist(rng) -> dict[str, bytes]:
    imgs = rng.integers(0, 256, size=(12, 28, 28))
    labels = rng.integers(0, 10, size=12)
    timgs, tlabels = imgs[:4], labels[:4]
    return {"train-images-idx3-ubyte.gz": gzip.compress(_idx_bytes(imgs)),
            "train-labels-idx1-ubyte.gz": gzip.compress(_idx_bytes(labels)),
            "t10k-images-idx3-ubyte.gz": gzip.compress(_idx_bytes(timgs)),
            "t10k-labels-idx1-ubyte.gz": gzip.compress(_idx_bytes(tlabels))}


def test_mnist_parser_reads_local_fixture_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    files = _fake_mnist(rng)
    _register_fixture(monkeypatch, tmp_path, "mnist", files)
    s = data.load_mnist("mnist", val=0.25)
    raw = data.parse_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz")
    assert raw.shape == (12, 28, 28)
    assert s.sizes() == {"train": 9, "val": 3, "test": 4}
    assert s.X_train.shape[1:] == (1, 28, 28) and s.X_train.max() <= 1.0
    assert np.allclose(np.sort(np.concatenate([s.X_train, s.X_val]).ravel()), np.sort(raw.ravel() / 255.0))


def test_fashion_mnist_uses_md5_hashes(tmp_path, monkeypatch):
    _register_fixture(monkeypatch, tmp_path, "fashion_mnist", _fake_mnist(np.random.default_rng(1)), alg="md5")
    s = data.load("fashion_mnist", val=0.25)
    assert s.sizes()["test"] == 4


def test_wrong_hash_gives_a_clear_error(tmp_path, monkeypatch):
    files = _fake_mnist(np.random.default_rng(0))
    _register_fixture(monkeypatch, tmp_path, "mnist", files)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz is corrupt.*Delete it"):
        data.fetch("mnist")


def test_missing_file_offline_says_what_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    with pytest.raises(data.DatasetNotAvailableError) as err:
        data.load_mnist()
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg
    assert "download=True" in msg and "DLCORE_DATA" in msg


def test_failed_download_is_reported_not_raised_raw(tmp_path, monkeypatch):
    import pooch

    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(data.DatasetNotAvailableError, match="could not download.*no network"):
        data.fetch("tiny_shakespeare", download=True)


def test_download_goes_through_pooch_with_the_known_hash(tmp_path, monkeypatch):
    import pooch

    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    text = "x" * data.TINY_SHAKESPEARE_CHARS
    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash))
        (tmp_path / "tiny_shakespeare" / fname).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tiny_shakespeare" / fname).write_text(text)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    assert data.load_tiny_shakespeare(download=True) == text
    assert calls and calls[0][0].endswith("input.txt")
    (tmp_path / "tiny_shakespeare" / "input.txt").write_text("too short")
    with pytest.raises(ValueError, match="expected 1115394"):
        data.load_tiny_shakespeare()


def test_cifar10_parser_reads_a_local_fixture_archive(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, n in [("data_batch_1", 6), ("data_batch_2", 4), ("test_batch", 5)]:
            payload = pickle.dumps({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                    b"labels": rng.integers(0, 10, n).tolist()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    _register_fixture(monkeypatch, tmp_path, "cifar10", {"cifar-10-python.tar.gz": buf.getvalue()}, alg="md5")
    s = data.load_cifar10(val=0.2)
    assert s.sizes() == {"train": 8, "val": 2, "test": 5}
    assert s.X_train.shape[1:] == (3, 32, 32) and s.X_test.dtype == np.float32


def test_unknown_download_and_bad_idx_files(tmp_path):
    with pytest.raises(ValueError, match="unknown downloadable data set 'svhn'"):
        data.fetch("svhn")
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.parse_idx(bad)
    short = tmp_path / "short.idx"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="header says shape"):
        data.parse_idx(short)
    with pytest.raises(ValueError, match="kind must be"):
        data.load_mnist("kmnist")


def test_registry_hashes_are_well_formed():
    for name, files in data.REMOTE.items():
        for fname, remote in files.items():
            assert remote.url.startswith("http"), (name, fname)
            if remote.known_hash is not None:
                alg, _, digest = remote.known_hash.partition(":")
                assert alg in ("sha256", "md5") and len(digest) == {"sha256": 64, "md5": 32}[alg]


def test_make_loader_yields_the_batches_of_a_plain_shuffled_dataloader():
    """One fancy-indexing gather per batch, same batches in the same order as DataLoader(shuffle=True)."""
    from torch.utils.data import DataLoader, TensorDataset

    X, y = np.arange(50, dtype=np.float32).reshape(25, 2), np.arange(25)
    for shuffle in (True, False):
        ours = list(data.make_loader(X, y, batch_size=4, shuffle=shuffle, seed=3))
        ref = list(DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=4,
                              shuffle=shuffle, generator=torch.Generator().manual_seed(3)))
        assert len(ours) == len(ref) == 7
        for (xa, ya), (xb, yb) in zip(ours, ref):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    loader = data.make_loader(X, y, batch_size=4, seed=3)
    epoch1, epoch2 = ([b[1].tolist() for b in loader] for _ in range(2))
    assert epoch1 != epoch2 and sorted(sum(epoch1, [])) == list(range(25))  # each epoch reshuffles


# ---------------------------------------------------------------- associative recall (chapter 8)
def test_associative_recall_has_documented_layout_and_answers():
    P, K, V = 6, 10, 7
    X, y = data.make_associative_recall(500, num_pairs=P, num_keys=K, num_values=V, seed=4)
    assert X.shape == (500, 2 * P + 1) and X.dtype == np.int64
    assert y.shape == (500,) and y.dtype == np.int64
    keys, values, query = X[:, 0:-1:2], X[:, 1:-1:2], X[:, -1]
    assert ((keys >= 0) & (keys < K)).all() and ((values >= K) & (values < K + V)).all()
    for row in range(len(X)):
        assert len(set(keys[row].tolist())) == P  # distinct keys within a sequence
        hits = np.flatnonzero(keys[row] == query[row])
        assert len(hits) == 1  # the query's key is present, exactly once
        assert y[row] == values[row, hits[0]]  # the target is the value paired with it
    # every pair position gets queried, and every value id occurs
    assert set(np.flatnonzero(keys == query[:, None]) % P) == set(range(P))
    assert set(y.tolist()) == set(range(K, K + V))


def test_associative_recall_is_seeded():
    a = data.make_associative_recall(50, seed=1)
    b = data.make_associative_recall(50, seed=1)
    c = data.make_associative_recall(50, seed=2)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=10, num_pairs=9, num_keys=8), "distinct keys"),
    (dict(n=0), "n must be"),
    (dict(n=10, num_pairs=0), "num_pairs"),
    (dict(n=10, num_values=0), "num_values"),
    (dict(n=10, num_keys=2.5), "num_keys"),
])
def test_associative_recall_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.make_associative_recall(**kwargs)
