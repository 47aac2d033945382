"""The application: where the parts are put together for a user.

`run`, `replay` and `register` (the Python API), the `lineage` CLI (commands/), the live
progress display, the text renderers and the web UI (ui/) live here, and only here are the
layers below composed: an executor chosen from the registry (`ledgerflow.executors`), the
ledger (`ledgerflow.lineage`), the store and the recorders a run reports to. Nothing below
imports this package.

>>> from ledgerflow.app.running import run
"""
