"""The recorders a run reports to beside its ledger and progress display, chosen in one place.

`run(recorders=...)` takes them from code; when it is not given, `configured` builds the ones
the user's environment asks for. This is the only place the environment picks a recorder.

>>> configured(Home.resolve("/tmp/no-such-home"), environ={})
()
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ledgerflow.engine.events import Recorder
from ledgerflow.home import Home

# Any of these says the user configured an OpenLineage transport (see openlineage-python's docs).
OPENLINEAGE_VARIABLES = ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE__TRANSPORT__TYPE")


def configured(home: Home, environ: Mapping[str, str] = os.environ) -> tuple[Recorder, ...]:
    """The recorders `environ` asks for: an OpenLineage emitter when OPENLINEAGE_* configure a
    transport and openlineage-python is installed; nothing otherwise."""
    emitter = openlineage_emitter(home, environ)
    return () if emitter is None else (emitter,)


def openlineage_emitter(home: Home, environ: Mapping[str, str] = os.environ) -> Recorder | None:
    """A live OpenLineage emitter, when `environ` configures a transport and the extra is installed."""
    if not any(environ.get(name) for name in OPENLINEAGE_VARIABLES):
        return None
    try:
        from ledgerflow.lineage.openlineage import OpenLineageEmitter
    except ImportError:  # the optional extra isn't installed: lineage stays in the ledger only
        return None
    return OpenLineageEmitter(store_url=home.store_url)
