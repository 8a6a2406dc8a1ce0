"""dlcore.gradcheck: finite differences agree with known gradients, never touch the caller's array, fail clearly."""

import numpy as np
import pytest

from dlcore.gradcheck import check_gradient, numerical_gradient, numerical_jacobian, relative_error

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 3))

# name: (f, its gradient, a point). Several shapes, including a 0-d array and a plain float.
FUNCTIONS = {
    "quadratic": (lambda x: 0.5 * x @ A @ x, lambda x: 0.5 * (A + A.T) @ x, RNG.standard_normal(3)),
    "sum_of_sines": (lambda x: np.sin(x).sum(), np.cos, RNG.standard_normal((2, 3))),
    "log_sum_exp": (lambda x: np.log(np.exp(x).sum()), lambda x: np.exp(x) / np.exp(x).sum(),
                    RNG.standard_normal((2, 2, 2))),
    "product": (lambda x: np.prod(x), lambda x: np.prod(x) / x, RNG.uniform(0.5, 2.0, 4)),
    "cube_0d": (lambda x: x**3, lambda x: 3 * x**2, np.array(1.3)),
    "cube_float": (lambda x: x**3, lambda x: 3 * x**2, -0.7),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_numerical_gradient_matches_the_analytic_gradient(name):
    f, grad, x = FUNCTIONS[name]
    num = numerical_gradient(f, x)
    assert num.shape == np.shape(x) and num.dtype == np.float64
    np.testing.assert_allclose(num, grad(np.asarray(x, dtype=np.float64)), rtol=1e-7, atol=1e-9)
    assert check_gradient(f, x, grad(np.asarray(x, dtype=np.float64))) < 1e-6


def test_central_difference_error_shrinks_like_h_squared():
    x = np.array([0.3, -1.1])
    f = lambda v: np.exp(v).sum()
    errors = [np.abs(numerical_gradient(f, x, h) - np.exp(x)).max() for h in (1e-2, 1e-3)]
    assert 50 < errors[0] / errors[1] < 200  # h ten times smaller: error about 100 times smaller


def test_step_h_is_used():
    f = lambda v: float(v[0] ** 3)  # central difference of x^3 is exactly 3x^2 + h^2
    assert numerical_gradient(f, np.array([0.0]), h=0.1)[0] == pytest.approx(0.01, rel=1e-9)
    assert numerical_gradient(f, np.array([0.0]))[0] == pytest.approx(1e-12, rel=1e-3)  # default h = 1e-6
    F = lambda v: v**3
    assert numerical_jacobian(F, np.array([0.0]), h=0.1)[0, 0] == pytest.approx(0.01, rel=1e-9)
    assert numerical_jacobian(F, np.array([0.0]))[0, 0] == pytest.approx(1e-12, rel=1e-3)


def test_the_callers_array_is_never_modified_and_f_sees_float64():
    x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    before = x.copy()
    seen = []

    def f(v):
        seen.append(v.dtype)
        v_copy_is_not_x = not np.shares_memory(v, x)
        assert v_copy_is_not_x
        return (v**2).sum()

    numerical_gradient(f, x)
    numerical_jacobian(lambda v: v**2, x)
    check_gradient(f, x, 2 * x.astype(np.float64), tol=1e-5)
    np.testing.assert_array_equal(x, before)
    assert x.dtype == np.float32 and set(seen) == {np.dtype(np.float64)}


def test_integer_and_float32_inputs_are_differentiated_in_float64():
    num = numerical_gradient(lambda v: (v**2).sum(), np.array([1, 2, 3]))
    np.testing.assert_allclose(num, [2.0, 4.0, 6.0], rtol=1e-8)
    J = numerical_jacobian(lambda v: v**2, np.array([1, 2]))  # an integer copy would round x + h back to x
    np.testing.assert_allclose(J, np.diag([2.0, 4.0]), rtol=1e-8, atol=1e-8)
    J = numerical_jacobian(lambda v: v**2, np.array([1.0, 2.0], np.float32))  # float32 cannot hold x + 1e-6
    np.testing.assert_allclose(J, np.diag([2.0, 4.0]), rtol=1e-8, atol=1e-8)


def test_numerical_jacobian_returns_float64_whatever_F_returns():
    J = numerical_jacobian(lambda v: (v**2).astype(np.float32), np.array([1.0, 2.0]), h=0.25)
    assert J.dtype == np.float64
    np.testing.assert_array_equal(J, np.diag([2.0, 4.0]))  # exact: h = 0.25 is a power of 2


def test_f_may_return_a_one_element_array_or_a_tensor_like():
    class Box:  # anything with a one-element .data, such as a dlcore Tensor or a torch tensor's detach()
        def __init__(self, value):
            self.data = np.array([[value]])

    num = numerical_gradient(lambda v: Box(float((v**2).sum())), np.array([1.0, -2.0]))
    np.testing.assert_allclose(num, [2.0, -4.0], rtol=1e-8)


def test_numerical_jacobian_layout_is_output_by_input():
    M = RNG.standard_normal((2, 3))
    J = numerical_jacobian(lambda v: M @ v, RNG.standard_normal(3))
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J, M, rtol=1e-7, atol=1e-9)
    # matrix input and output are flattened in C order: J[i, j] = dF.flat[i] / dx.flat[j]
    x = RNG.standard_normal((2, 2))
    J = numerical_jacobian(lambda v: v.T, x)
    expected = np.zeros((4, 4))
    for i, j in np.ndindex(2, 2):
        expected[2 * j + i, 2 * i + j] = 1.0
    np.testing.assert_allclose(J, expected, atol=1e-9)


def test_numerical_jacobian_of_softmax_has_zero_row_and_column_sums():
    softmax = lambda v: np.exp(v) / np.exp(v).sum()
    J = numerical_jacobian(softmax, np.array([0.5, -1.0, 2.0]))
    s = softmax(np.array([0.5, -1.0, 2.0]))
    np.testing.assert_allclose(J, np.diag(s) - np.outer(s, s), atol=1e-9)
    np.testing.assert_allclose(J.sum(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(J.sum(axis=1), 0.0, atol=1e-9)


@pytest.mark.parametrize("h", [0.0, -1e-6, np.inf, np.nan, "1e-6", None])
def test_bad_step_raises_a_clear_error(h):
    with pytest.raises(ValueError, match="step h must be a positive finite number"):
        numerical_gradient(lambda v: v.sum(), np.ones(2), h=h)
    with pytest.raises(ValueError, match="step h must be a positive finite number"):
        numerical_jacobian(lambda v: v, np.ones(2), h=h)
    with pytest.raises(ValueError, match="step h must be a positive finite number"):
        check_gradient(lambda v: v.sum(), np.ones(2), np.ones(2), h=h)


def test_numpy_float_step_is_accepted():
    num = numerical_gradient(lambda v: (v**2).sum(), np.array([1.0]), h=np.float64(1e-4))
    np.testing.assert_allclose(num, [2.0], rtol=1e-8)


def test_non_scalar_f_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"^f must return a scalar to take its gradient, got shape \(2,\)$"):
        numerical_gradient(lambda v: v * 2, np.ones(2))


def test_shape_mismatch_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"shapes \(2,\) and \(3,\)"):
        relative_error(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(2,\)"):
        check_gradient(lambda v: v.sum(), np.ones(2), np.ones(3))


def test_relative_error_values():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([1.0, 2.0], [1.0, 2.2]) == pytest.approx(0.2 / 2.2)
    assert relative_error([1.0, -4.0], [1.1, -4.0]) == pytest.approx(0.1 / 1.1)  # the worst entry, not a mean
    assert relative_error([2.0], [-2.0]) == pytest.approx(2.0)  # |a - b| / max(|a|, |b|): signs count
    assert relative_error(0.0, 0.0) == 0.0  # the floor avoids 0 / 0
    assert relative_error([0.0], [1e-13]) == pytest.approx(0.1)  # floor 1e-12 at tiny values
    assert relative_error([0.0], [1e-13], floor=1e-15) == pytest.approx(1.0)
    assert relative_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    assert isinstance(relative_error([1.0], [2.0]), float)


def test_check_gradient_returns_the_error_when_it_passes():
    x = np.array([0.5, -1.5, 2.0])
    err = check_gradient(lambda v: (v**3).sum(), x, 3 * x**2)
    assert 0.0 < err < 1e-8
    assert err == relative_error(3 * x**2, numerical_gradient(lambda v: (v**3).sum(), x))
    assert check_gradient(lambda v: (v**3).sum(), x, 3 * x**2, tol=err) == err  # the bound itself passes


def test_check_gradient_names_the_worst_entry_of_a_wrong_gradient():
    x = np.array([[0.5, -1.5], [2.0, 1.0]])
    wrong = 3 * x**2
    wrong[1, 0] *= 1.5  # a planted error in one entry
    with pytest.raises(AssertionError, match=r"relative error 3\.33e-01 > 1e-06; worst entry \(1, 0\): "
                                             r"analytic 18, finite difference 12"):
        check_gradient(lambda v: (v**3).sum(), x, wrong)


def test_check_gradient_tolerance_and_step_are_used():
    x = np.array([1.0, 2.0])
    slightly_wrong = 2 * x * (1 + 1e-4)
    assert check_gradient(lambda v: (v**2).sum(), x, slightly_wrong, tol=1e-3) == pytest.approx(1e-4, rel=1e-3)
    with pytest.raises(AssertionError, match="> 1e-05"):
        check_gradient(lambda v: (v**2).sum(), x, slightly_wrong, tol=1e-5)
    # with a huge step the central difference of x^3 is off by h^2: the check must use the given h
    with pytest.raises(AssertionError):
        check_gradient(lambda v: (v**3).sum(), x, 3 * x**2, h=0.5)


def test_check_gradient_floor_absorbs_noise_where_the_gradient_is_zero():
    cube = lambda v: (v**3).sum()  # gradient 0 at 0; the central difference there is h**2 = 1e-12
    with pytest.raises(AssertionError, match=r"worst entry \(0,\): analytic 0, finite difference 1e-12"):
        check_gradient(cube, np.array([0.0]), np.array([0.0]))
    assert check_gradient(cube, np.array([0.0]), np.array([0.0]), floor=1e-4) < 1e-6
    with pytest.raises(AssertionError, match=r"worst entry \(0,\): analytic 1e-06"):  # a real error still fails
        check_gradient(cube, np.array([0.0]), np.array([1e-6]), floor=1e-4)


def test_check_gradient_fails_on_nan():
    with pytest.raises(AssertionError, match="gradient check failed"):
        check_gradient(lambda v: (v**2).sum(), np.ones(2), np.array([np.nan, 2.0]))


def test_check_gradient_of_a_scalar_point():
    assert check_gradient(lambda v: v**2, 3.0, 6.0) < 1e-8
    with pytest.raises(AssertionError, match=r"worst entry \(\): analytic 7"):
        check_gradient(lambda v: v**2, 3.0, 7.0)
