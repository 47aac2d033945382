"""The HTML shell of every `lineage ui` page: navigation, a title, and the page's script.

The server renders the frame and what it knows at once (the ref a page is about, a 404's
message); each page's script in `static/` fetches the JSON it draws from `/api/...` and
writes every string with textContent, never innerHTML, so no recorded name or value can
become markup. Everything the page loads is served from this package: no CDN, no web font.
"""

from __future__ import annotations

import html

NAV = (("executions", "/executions", "Executions"), ("lineage", "/lineage", "Lineage"),
       ("models", "/models", "Models"), ("metrics", "/metrics", "Metrics"))


def _attr(value) -> str:
    return html.escape(str(value), quote=True)


def page(name: str, title: str, data: dict | None = None, body: str = "") -> str:
    """A page whose script is `static/<name>.js`; `data` becomes data-* attributes of <main>,
    which the script reads (the ref, the direction of a walk, ...). `body` is trusted HTML
    made by this module."""
    attributes = "".join(f' data-{k}="{_attr(v)}"' for k, v in (data or {}).items() if v is not None)
    here = ' class="here"'
    links = "".join(f'<a href="{href}"{here if key == name else ""}>{label}</a>' for key, href, label in NAV)
    script = f'<script src="/static/{name}.js" defer></script>' if name != "error" else ""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)} \u2014 Ledgerflow</title>"
        "<link rel=\"stylesheet\" href=\"/static/ui.css\">"
        "<link rel=\"icon\" href=\"data:,\">"
        "<script src=\"/static/common.js\" defer></script>"
        f"{script}</head>"
        f"<body data-page=\"{_attr(name)}\"><header><a class=\"brand\" href=\"/executions\">Ledgerflow</a>"
        f"<nav>{links}</nav><span class=\"ro\" title=\"no page or endpoint of this app changes the ledger\">"
        "read-only</span></header>"
        f"<main id=\"main\"{attributes}>{body}<noscript>This page draws with JavaScript.</noscript></main>"
        "</body></html>\n"
    )


def not_found(message: str) -> str:
    """The 404 page: says what was not found, in the ledger's own words."""
    return page("error", "Not found",
                body=f"<h1>Not found</h1><p class=\"missing\">{html.escape(message)}</p>"
                     "<p><a href=\"/executions\">All executions</a></p>")


def error(message: str, title: str = "Cannot read the ledger") -> str:
    """Any other failure: one line saying what went wrong, never a traceback."""
    return page("error", title, body=f"<h1>{html.escape(title)}</h1><p class=\"missing\">{html.escape(message)}</p>")
