import matplotlib.pyplot as plt
import pytest

from dlcore import widgets


def draw(ax=None, a: float = 1.0, b: int = 2):
    ax.plot([0, 1], [0, a * b])


def _capture_display(monkeypatch) -> list:
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    return shown


def test_demo_draws_static_panels_without_a_kernel(monkeypatch):
    shown = _capture_display(monkeypatch)
    assert widgets.demo(draw, controls={"a": (0.0, 2.0, 0.1)}, static=[{"a": 0.5}, {"a": 1.5}]) is None
    fig = plt.gcf()
    assert len([ax for ax in fig.axes if ax.lines]) == 2
    assert fig.axes[0].get_title() == "a=0.5"
    assert shown == []  # no kernel under pytest: no live controls


def test_demo_displays_live_controls_when_asked(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    shown = _capture_display(monkeypatch)
    widgets.demo(draw, controls={"a": (0.0, 2.0, 0.1), "b": [1, 2, 3]}, live=True)
    assert len(shown) == 1 and isinstance(shown[0], ipywidgets.VBox)
    sliders = shown[0].children[0].children
    assert sliders[0].value == 1.0 and sliders[1].value == 2


def test_demo_checks_its_draw_function():
    with pytest.raises(TypeError, match="no parameter"):
        widgets.demo(draw, controls={"c": (0, 1)}, live=False)

    def no_default(ax, a):
        pass

    def no_ax(a=1.0):
        pass

    with pytest.raises(TypeError, match="needs a default"):
        widgets.demo(no_default, controls={"a": (0, 1)}, live=False)
    with pytest.raises(TypeError, match="'ax' argument"):
        widgets.demo(no_ax, controls={"a": (0, 1)}, live=False)


def test_static_panels_lays_out_a_grid():
    fig = widgets.static_panels(draw, [{"a": 1.0}, {"a": 2.0}, {"a": 3.0}, {"a": 4.0}], ncols=3)
    assert len(fig.axes) == 6 and not fig.axes[-1].axison
    with pytest.raises(ValueError, match="at least one setting"):
        widgets.static_panels(draw, [])
    plt.close("all")


def test_not_in_a_kernel_under_pytest():
    assert widgets.in_kernel() is False
