import math

import numpy as np
import pytest
import torch

from dlcore import hardware as hw


def test_matmul_flops_is_two_per_multiply_add():
    assert hw.matmul_flops(2, 3, 4) == 2 * 2 * 3 * 4
    assert hw.matmul_flops(1, 1, 1) == 2
    assert hw.matmul_flops(1000, 1000, 1000) == 2 * 10**9


def test_matmul_flops_counts_the_multiplies_of_a_naive_product():
    m, k, n = 3, 5, 2
    count = 0
    for _ in range(m):
        for _ in range(n):
            for _ in range(k):
                count += 2  # one multiply, one add
    assert hw.matmul_flops(m, k, n) == count


def test_matmul_bytes_reads_inputs_and_writes_output_once():
    assert hw.matmul_bytes(2, 3, 4) == (6 + 12 + 8) * 4
    assert hw.matmul_bytes(2, 3, 4, bytes_per_element=2) == (6 + 12 + 8) * 2


def test_attention_flops_is_the_two_products():
    T, S, d, h, b = 7, 5, 16, 3, 2
    expected = b * h * (hw.matmul_flops(T, d, S) + hw.matmul_flops(T, S, d))
    assert hw.attention_flops(T, S, d, n_heads=h, batch=b) == expected
    assert hw.attention_flops(8, 8, 4) == 4 * 8 * 8 * 4
    # quadratic in the sequence length, linear in the head width
    assert hw.attention_flops(16, 16, 4) == 4 * hw.attention_flops(8, 8, 4)
    assert hw.attention_flops(8, 8, 8) == 2 * hw.attention_flops(8, 8, 4)


def test_intensity_of_a_square_matmul_grows_like_n():
    # 2n^3 FLOPs over 3 n^2 * 4 bytes = n / 6 FLOP per byte in float32
    for n in (6, 60, 600):
        i = hw.arithmetic_intensity(hw.matmul_flops(n, n, n), hw.matmul_bytes(n, n, n))
        assert i == pytest.approx(n / 6)


def test_roofline_is_min_of_peak_and_bandwidth_times_intensity():
    peak, bw = 100e12, 2e12
    assert hw.ridge_point(peak, bw) == pytest.approx(50.0)
    assert hw.roofline(10.0, peak, bw) == pytest.approx(20e12)        # memory-bound: I * bw
    assert hw.roofline(50.0, peak, bw) == pytest.approx(peak)         # the ridge: both roofs meet
    assert hw.roofline(500.0, peak, bw) == pytest.approx(peak)        # compute-bound: flat
    grid = np.logspace(-2, 4, 50)
    att = hw.roofline(grid, peak, bw)
    assert isinstance(att, np.ndarray) and att.shape == grid.shape
    np.testing.assert_allclose(att, np.minimum(peak, grid * bw))
    assert np.all(np.diff(att) >= 0)


def test_mfu_arithmetic():
    # 1e5 tokens/s at 6e8 FLOP/token is 6e13 FLOP/s; on a 1.2e14 peak that is one half
    assert hw.mfu(1e5, 6e8, 1.2e14) == pytest.approx(0.5)
    assert hw.mfu(1.0, 1.0, 4.0) == pytest.approx(0.25)


def test_mfu_rejects_a_missing_or_bad_peak():
    with pytest.raises(ValueError, match="measured peak"):
        hw.mfu(1e5, 6e8, None)
    with pytest.raises(ValueError, match="peak"):
        hw.mfu(1e5, 6e8, 0.0)
    with pytest.raises(ValueError, match="tokens_per_second"):
        hw.mfu(-1.0, 6e8, 1e12)


@pytest.mark.parametrize("name, dtype, tflops", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.5),            # what torch.cuda.get_device_name returns (SXM)
    ("NVIDIA H100 PCIe", torch.bfloat16, 756.5),
    ("nvidia h200", "bfloat16", 989.5),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312),
    ("NVIDIA A100-PCIE-40GB", "tf32", 156),
    ("NVIDIA A100-SXM4-40GB", "float32", 19.5),
    ("Tesla V100-SXM2-16GB", "fp16", 125),
    ("Tesla T4", "half", 65),
    ("NVIDIA L4", "bf16", 121),
    ("NVIDIA GeForce RTX 4090", "bf16", 165.2),
    ("TPU v4", "bf16", 275),
    ("TPU v5 lite", "bf16", 197),
])
def test_peak_flops_knows_common_chips(name, dtype, tflops):
    assert hw.peak_flops(name, dtype) == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize("name", ["cpu", "Intel(R) Xeon(R)", "NVIDIA A10G", "NVIDIA GeForce RTX 3090",
                                  "NVIDIA H100 NVL", "Apple M2", "TPU v3"])
def test_peak_flops_is_none_for_unknown_chips(name):
    assert hw.peak_flops(name, "bf16") is None
    assert hw.peak_bandwidth(name) is None


def test_peak_flops_is_none_for_a_format_the_chip_lacks():
    assert hw.peak_flops("Tesla V100-SXM2-32GB", "bf16") is None   # Volta has no bfloat16 tensor cores


def test_tensor_formats_are_faster_than_fp32_on_ampere_and_hopper():
    for name in ("A100", "H100 SXM", "H200"):
        assert hw.peak_flops(name, "bf16") == pytest.approx(2 * hw.peak_flops(name, "tf32"), rel=1e-2)
        assert hw.peak_flops(name, "tf32") > hw.peak_flops(name, "fp32")


def test_peak_bandwidth_and_ridge_point_of_an_h100():
    bw = hw.peak_bandwidth("NVIDIA H100 80GB HBM3")
    assert bw == pytest.approx(3.35e12)
    assert hw.ridge_point(hw.peak_flops("H100 SXM"), bw) == pytest.approx(295.4, rel=1e-3)
    assert hw.peak_bandwidth("H200") > bw


@pytest.mark.parametrize("name, tb_s", [
    ("NVIDIA A100-SXM4-80GB", 2.039), ("NVIDIA A100 80GB PCIe", 1.935), ("NVIDIA A100-SXM4-40GB", 1.555),
    ("NVIDIA A100-PCIE-40GB", 1.555), ("NVIDIA H200", 4.8), ("NVIDIA H100 PCIe", 2.0), ("TPU v5p", 2.765),
])
def test_peak_bandwidth_follows_the_datasheet_variant(name, tb_s):
    assert hw.peak_bandwidth(name) == pytest.approx(tb_s * 1e12)


def test_bf16_dense_peak_is_half_the_sparse_datasheet_figure():
    # the datasheets print 1,979 (H100 SXM, H200), 1,513 (H100 PCIe) and 624 (A100) bf16 TFLOP/s "with sparsity"
    for name, sparse in (("H100 SXM", 1979), ("H200", 1979), ("H100 PCIe", 1513), ("A100", 624)):
        assert hw.peak_flops(name, "bf16") == pytest.approx(sparse / 2 * 1e12)


@pytest.mark.parametrize("bad", [dict(device_name=3), dict(device_name="H100", dtype="int4")])
def test_peak_flops_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        hw.peak_flops(**bad)


@pytest.mark.parametrize("lib, dtype", [("torch", "float32"), ("torch", torch.float64), ("numpy", "float32"),
                                        ("numpy", np.float64)])
def test_measure_gemm_returns_a_positive_rate(lib, dtype):
    rate = hw.measure_gemm(16, dtype=dtype, lib=lib, repeats=2)
    assert math.isfinite(rate) and rate > 0                                # no timing bound: machine-dependent


@pytest.mark.parametrize("call, match", [
    (lambda: hw.matmul_flops(0, 3, 4), "m must be a positive integer"),
    (lambda: hw.matmul_flops(2, 3.5, 4), "k must be a positive integer"),
    (lambda: hw.attention_flops(8, 8, 0), "d_head"),
    (lambda: hw.arithmetic_intensity(10, 0), "bytes_moved"),
    (lambda: hw.arithmetic_intensity(-1, 10), "flops"),
    (lambda: hw.roofline(-1.0, 1e12, 1e11), "intensity"),
    (lambda: hw.roofline(1.0, 0, 1e11), "peak_flops"),
    (lambda: hw.ridge_point(1e12, -1), "bandwidth"),
    (lambda: hw.measure_gemm(16, lib="jax"), "lib must be"),
    (lambda: hw.measure_gemm(16, dtype="bf16", lib="numpy"), "numpy GEMM supports"),
    (lambda: hw.measure_gemm(16, dtype="int8"), "unknown dtype"),
    (lambda: hw.measure_gemm(0), "n must be"),
])
def test_bad_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- claims pinned by mutation testing -----------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda: hw.matmul_flops(2, 3, 0), "n must be a positive integer, got 0"),
    (lambda: hw.matmul_bytes(0, 3, 4), "m must be a positive integer, got 0"),
    (lambda: hw.matmul_bytes(2, 0, 4), "k must be a positive integer, got 0"),
    (lambda: hw.matmul_bytes(2, 3, 0), "n must be a positive integer, got 0"),
    (lambda: hw.matmul_bytes(2, 3, 4, bytes_per_element=0), "bytes_per_element must be a positive integer, got 0"),
    (lambda: hw.attention_flops(0, 8, 4), "seq_q must be a positive integer, got 0"),
    (lambda: hw.attention_flops(8, 0, 4), "seq_k must be a positive integer, got 0"),
    (lambda: hw.attention_flops(8, 8, 0), "d_head must be a positive integer, got 0"),
    (lambda: hw.attention_flops(8, 8, 4, n_heads=0), "n_heads must be a positive integer, got 0"),
    (lambda: hw.attention_flops(8, 8, 4, batch=0), "batch must be a positive integer, got 0"),
    (lambda: hw.measure_gemm(8, repeats=0), "repeats must be a positive integer, got 0"),
    (lambda: hw.mfu(-1.0, 6e8, 1e12), "tokens_per_second must be a finite number > 0, got -1.0"),
    (lambda: hw.mfu(1e5, 0.0, 1e12), "flops_per_token must be a finite number > 0, got 0.0"),
    (lambda: hw.mfu(1e5, 6e8, -1.0), "peak must be a finite number > 0, got -1.0"),
    (lambda: hw.ridge_point(0.0, 1e11), "peak_flops must be a finite number > 0, got 0.0"),
    (lambda: hw.ridge_point(1e12, 0.0), "bandwidth must be a finite number > 0, got 0.0"),
    (lambda: hw.roofline(1.0, 0.0, 1e11), "peak_flops must be a finite number > 0, got 0.0"),
    (lambda: hw.roofline(1.0, 1e12, 0.0), "bandwidth must be a finite number > 0, got 0.0"),
    (lambda: hw.roofline(-1.0, 1e12, 1e11), "intensity must be finite and >= 0"),
    (lambda: hw.mfu(1e5, 6e8, None), "peak is None: the chip is not in the table of peak_flops(); "
                                       "pass a measured peak, e.g. measure_gemm(...) * 1e9"),
    (lambda: hw.peak_flops("H100", "int4"), "unknown dtype 'int4'; expected one of ['bf16', 'bfloat16',"),
    (lambda: hw.peak_flops(3), "device_name must be a string, got 3"),
    (lambda: hw.peak_bandwidth(3), "device_name must be a string, got 3"),
    (lambda: hw.measure_gemm(8, lib="numpy", device="meta"), "numpy runs on the CPU only, got device='meta'"),
])
def test_error_messages_name_the_bad_argument(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("call", [lambda: hw.mfu(float("nan"), 1.0, 1.0), lambda: hw.ridge_point(1e12, float("inf")),
                                  lambda: hw.roofline(1.0, float("nan"), 1e11)])
def test_non_finite_rates_are_rejected(call):
    with pytest.raises(ValueError, match="finite number > 0"):
        call()


def test_zero_flops_and_sub_byte_traffic_are_valid():
    assert hw.arithmetic_intensity(0, 10) == 0.0
    assert hw.arithmetic_intensity(0.5, 10) == 0.05
    assert hw.arithmetic_intensity(3.0, 0.5) == 6.0


def test_roofline_at_zero_intensity_is_zero_and_a_scalar_gives_a_float():
    assert hw.roofline(0.0, 1e12, 1e11) == 0.0
    assert type(hw.roofline(10.0, 1e12, 1e11)) is float
    np.testing.assert_array_equal(hw.roofline([0, 20], 1e12, 1e11), [0.0, 1e12])


def test_peaks_scale_the_table_by_exactly_1e12():
    assert hw.peak_flops("Tesla T4", "fp16") == 65e12
    assert hw.peak_bandwidth("NVIDIA H100 PCIe") == 2e12


def test_tpu_names_with_and_without_the_lite_alias():
    assert hw.peak_flops("TPU v5e") == hw.peak_flops("TPU v5 lite") == 197e12
    assert hw.peak_flops("TPU v5") is None  # v5 alone is ambiguous (v5e or v5p): unknown, not a guess


class _FakeTimer:
    """Stands in for best_time: calls the timed function once, keeps its operands and returns 0.5 s."""

    def __init__(self):
        self.kwargs, self.operands = None, None

    def __call__(self, fn, **kwargs):
        import inspect
        self.kwargs = kwargs
        fn()
        self.operands = inspect.getclosurevars(fn).nonlocals
        return 0.5


@pytest.mark.parametrize("lib, dtype, want", [
    ("numpy", "float32", np.float32), ("numpy", "fp32", np.float32), ("numpy", "float64", np.float64),
    ("numpy", "fp64", np.float64), ("numpy", np.float32, np.float32), ("numpy", "numpy.float64", np.float64),
    ("torch", "bf16", torch.bfloat16), ("torch", torch.float64, torch.float64),
])
def test_measure_gemm_times_an_n_by_n_product_of_the_requested_dtype(monkeypatch, lib, dtype, want):
    timer = _FakeTimer()
    monkeypatch.setattr(hw, "best_time", timer)
    rate = hw.measure_gemm(6, dtype=dtype, lib=lib, repeats=3)
    assert rate == 2 * 6**3 / 0.5 / 1e9                 # 2 n^3 FLOPs over the best time, in GFLOP/s
    assert timer.kwargs == {"repeats": 3, "warmup": 1}
    a, b = timer.operands["a"], timer.operands["b"]
    assert a.shape == b.shape == (6, 6) and a.dtype == want and b.dtype == want


def test_measure_gemm_defaults_and_fixed_operands(monkeypatch):
    timer = _FakeTimer()
    monkeypatch.setattr(hw, "best_time", timer)
    hw.measure_gemm(4)                                     # float32, torch, CPU, best of 5
    assert timer.kwargs == {"repeats": 5, "warmup": 1}
    first = timer.operands
    assert first["a"].dtype == torch.float32 and first["a"].device.type == "cpu"
    hw.measure_gemm(4)
    assert torch.equal(first["a"], timer.operands["a"]) and not torch.equal(first["a"], first["b"])
    hw.measure_gemm(4, lib="numpy")
    np_first = timer.operands
    hw.measure_gemm(4, lib="numpy")
    np.testing.assert_array_equal(np_first["a"], timer.operands["a"])  # seeded: same inputs every call


def test_measure_gemm_puts_the_operands_on_the_device(monkeypatch):
    timer = _FakeTimer()
    monkeypatch.setattr(hw, "best_time", timer)
    hw.measure_gemm(4, dtype="fp16", device="meta")        # the meta device: no data, no compute
    assert timer.operands["a"].device.type == "meta" and timer.operands["a"].dtype == torch.float16
    assert timer.operands["sync"] is not torch.cuda.synchronize


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measure_gemm_synchronizes_on_cuda(monkeypatch):
    timer = _FakeTimer()
    monkeypatch.setattr(hw, "best_time", timer)
    hw.measure_gemm(8, device="cuda")
    assert timer.operands["sync"] is torch.cuda.synchronize and timer.operands["a"].device.type == "cuda"
