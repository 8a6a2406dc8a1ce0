"""A Sphinx extension with the book's workarounds for bugs in its toolchain (``_config.yml``:
``sphinx.local_extensions``). Each fix is checked by tests/test_browser.py, which fails on any console error.

- Sphinx 7.4 writes an inline script twice when an extension registers it after the builder starts
  (``app.add_js_file(None, body=...)`` is stored once with filename ``None`` and once with ``''``, which
  compare unequal). sphinx-thebe's ``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has
  already been declared" on every page. :func:`dedupe_scripts` drops the second copy.
"""

from __future__ import annotations


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of any scripts that differ only in a ``None`` versus ``''`` filename."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", js) or "", getattr(js, "priority", None), tuple(sorted(attrs.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)  # after the extensions that add scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
