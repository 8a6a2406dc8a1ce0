"""Interactive demos that still make sense in the static HTML book.

Widget callbacks need a running Python kernel: in Jupyter or Colab a slider redraws the figure, but the
HTML book has no kernel, so a bare widget would show nothing useful there. :func:`demo` therefore always
draws a **static figure** first (small multiples at a few chosen settings, or the default setting), and
only then adds the live controls when ``ipywidgets`` is installed and the code runs in a kernel.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt


def _defaults(fn: Callable, controls: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    unknown = [k for k in controls if k not in params]
    if unknown:
        raise TypeError(f"{fn.__name__}() has no parameter(s) {unknown} to attach controls to")
    out = {}
    for name, p in params.items():
        if name == "ax":
            continue
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{fn.__name__}() parameter {name!r} needs a default value: the static figure "
                            "of the demo is drawn with the defaults")
        out[name] = p.default
    return out


def _fmt(name: str, value: Any) -> str:
    return f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"


def static_panels(draw: Callable[..., None], settings: Sequence[dict[str, Any]], ncols: int = 3,
                  size: tuple[float, float] = (3.2, 3.0), title: Callable[[dict], str] | None = None
                  ) -> plt.Figure:
    """Small multiples: call ``draw(ax=..., **setting)`` once per setting, side by side."""
    if not settings:
        raise ValueError("static_panels needs at least one setting")
    n = len(settings)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax, setting in zip(axes.ravel(), settings):
        draw(ax=ax, **setting)
        label = title(setting) if title else ", ".join(_fmt(k, v) for k, v in setting.items())
        ax.set_title(label, fontsize=9)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def in_kernel() -> bool:
    """True inside a live Jupyter/Colab kernel (where widget callbacks can run)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def demo(draw: Callable[..., None], controls: dict[str, Any], static: Sequence[dict[str, Any]] | None = None,
         ncols: int = 3, live: bool | None = None) -> None:
    """Show an interactive figure with a static fallback.

    ``draw(ax, **params)`` draws one figure into ``ax``; every parameter except ``ax`` needs a default.
    ``controls`` maps parameter names to ipywidgets abbreviations (``(lo, hi, step)`` tuples, lists) or
    widgets. ``static`` is a list of settings to show as small multiples (default: the defaults).

    The static figure is always shown: it is what the HTML book displays. Then, in a running kernel with
    ``ipywidgets`` installed (``live=None``), or always with ``live=True``, the sliders and a live figure are
    displayed below it. Both are displayed here, so the call works anywhere in a cell; it returns nothing.
    """
    if "ax" not in inspect.signature(draw).parameters:
        raise TypeError(f"{draw.__name__}() must take an 'ax' argument to draw into")
    defaults = _defaults(draw, controls)
    settings = [dict(defaults, **s) for s in (static or [{}])]
    static_panels(draw, settings, ncols=ncols, title=lambda s: ", ".join(_fmt(k, s[k]) for k in controls))
    plt.show()
    if not (in_kernel() if live is None else live):
        return
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError as e:
        if live:
            raise ImportError("the live demo needs ipywidgets: pip install ipywidgets "
                              "(the static figure above shows the same demo at fixed settings)") from e
        return

    out = widgets.Output()

    def redraw(**params):
        with out:
            out.clear_output(wait=True)
            _, ax = plt.subplots(figsize=(4.5, 3.8))
            draw(ax=ax, **params)
            plt.show()

    ui = widgets.interactive(redraw, **controls)
    for child, name in zip(ui.children, controls):
        if hasattr(child, "value") and name in defaults:
            try:
                child.value = defaults[name]
            except Exception:  # noqa: BLE001 - a default outside the control's range keeps its own
                pass
    display(widgets.VBox([ui, out]))
