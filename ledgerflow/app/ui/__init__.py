"""`lineage ui`: a local, read-only web app over a Ledgerflow home's ledger and store.

    from ledgerflow.app.ui import make_app
    app = make_app(home)          # a Starlette app; serve it with uvicorn (see commands/ui.py)

Modules, one concept each: `routes` (HTML pages and the JSON they draw from),
`views` (what each JSON endpoint answers, assembled from the Ledger's read API),
`artifacts` (previews and downloads of stored bytes), `pages` (the HTML shell of every
page), `serving` (running it under uvicorn until Ctrl-C). The front end is plain
JavaScript and CSS in `static/`: nothing is loaded from the network.

Starlette and uvicorn are imported by this package only, so `lineage --help` never pays for them.
"""

from ledgerflow.app.ui.routes import make_app

__all__ = ["make_app"]
