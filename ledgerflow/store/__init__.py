"""Content-addressed storage over fsspec: objects named by their blake3 digest.

>>> import tempfile
>>> store = Store.open(tempfile.mkdtemp())
>>> digest = store.put_bytes(b"hello")
>>> store.get_bytes(digest)
b'hello'
"""

from ledgerflow.store.active import current, using
from ledgerflow.store.cas import Store
from ledgerflow.store.digest import Hasher, digest_bytes, digest_file, is_digest, validate_digest
from ledgerflow.store.manifest import Manifest, ManifestEntry

__all__ = [
    "Store",
    "Manifest",
    "ManifestEntry",
    "digest_bytes",
    "digest_file",
    "Hasher",
    "validate_digest",
    "is_digest",
    "current",
    "using",
]
