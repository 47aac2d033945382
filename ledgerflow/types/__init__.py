"""Typed handles, the value codec, and the type-compatibility relation."""

from ledgerflow.errors import TypeMismatch, UnsupportedType
from ledgerflow.types.annotations import type_name
from ledgerflow.types.compat import accepts
from ledgerflow.types.conform import as_declared, conform
from ledgerflow.types.handles import Dataset, Directory, File, Model
from ledgerflow.types.kinds import Handle
from ledgerflow.types.support import check_supported

__all__ = [
    "Dataset", "Directory", "File", "Handle", "Model", "TypeMismatch", "UnsupportedType",
    "accepts", "as_declared", "check_supported", "conform", "type_name",
]
