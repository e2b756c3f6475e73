"""Sphinx extension: drop repeated <script> entries from each page.

With Jupyter Book 1.0.4, sphinx-thebe 0.3.1 adds its inline configuration script
(`const THEBE_JS_URL = ...`) once per `env-before-read-docs` event, which fires more than once in
one build; the second copy throws "Identifier 'THEBE_JS_URL' has already been declared" in every
page. tests/test_browser.py fails on any script error, which is how this was found.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # the same file or inline body (a body script's filename is None or "", depending on who added it)
        key = (getattr(script, "filename", None) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
