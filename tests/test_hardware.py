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
