"""Typed errors. Each carries the context a user needs to act on it."""

from __future__ import annotations


class LedgerflowError(Exception):
    """Base class of every error Ledgerflow raises on purpose."""


class WorkflowTypeError(LedgerflowError, TypeError):
    """A workflow or task definition is wrong; raised when it is built, before anything runs."""


class DefinitionError(LedgerflowError, ValueError):
    """A task, map_task, Resources, metric or handle was given a value that cannot work (retries=-1,
    min_success=0, a negative memory, a NaN metric, a flavor that contradicts the tag); raised
    where it is given."""


class HandleTypeError(LedgerflowError, TypeError):
    """A value cannot be taken as the handle type declared for it: another kind or tag, or neither
    a handle nor what stands for one (a path, a table); `conform` reports it as a TypeMismatch."""


class DecodeError(LedgerflowError, ValueError):
    """A recorded value, a command-line text or a table file does not decode as its declared type."""


class LoadError(LedgerflowError):
    """A FILE_OR_MODULE:WORKFLOW target could not be loaded; the message says why."""


class StepTimeout(LedgerflowError):
    """A step ran longer than its task's `timeout`.

    Deliberately not a TimeoutError: the store retries those (store/retry.py), and a step's
    deadline must end the step, not be retried as a slow connection."""


class UnknownExecutor(LedgerflowError, ValueError):
    """An executor was named that Ledgerflow does not know (`run(executor=...)`, `--executor`)."""


class DigestError(LedgerflowError, ValueError):
    """A text given as a digest is not one ('blake3:' followed by 64 hex characters)."""


class IntegrityError(LedgerflowError):
    """Stored bytes, or a ledger row, no longer match the digest or hash that names them."""

    def __init__(self, message: str, *, digest: str | None = None, location: str | None = None):
        super().__init__(message)
        self.digest = digest
        self.location = location


class StoreError(LedgerflowError):
    """The store could not be reached or written (full disk, permissions, a server down)."""


class ManifestError(StoreError, ValueError):
    """A directory manifest is damaged or unsafe: not canonical JSON, a path that would escape its
    checkout, a path listed twice; raised when one is read or built."""


class StoreRefused(StoreError, ValueError):
    """The store refuses what it was asked to store: a symlink that leads outside the directory,
    dangles or loops, a special file, a write to an object already published."""


class ObjectNotFound(StoreError, KeyError):
    """No object with this digest is in the store."""

    def __init__(self, digest: str, location: str):
        super().__init__(f"no object {digest} in the store at {location}")
        self.digest = digest
        self.location = location

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class ParameterError(LedgerflowError, ValueError):
    """A run was given a parameter that is unknown, missing, or does not convert to its type."""


class ExecutionFailed(LedgerflowError):
    """A step failed; the execution stopped. `execution` holds what was recorded.

    The step's own exception is chained as `__cause__`, with its traceback.
    """

    def __init__(self, message: str, *, execution=None, step: str | None = None):
        super().__init__(message)
        self.execution = execution
        self.step = step


class StepOutputError(LedgerflowError, TypeError):
    """A step returned a value that does not match its declared output type."""


class LedgerError(LedgerflowError):
    """The ledger could not be opened, read or written."""


class NotAWorkflow(LedgerflowError, TypeError):
    """`run()` was handed something that is not a `@workflow` (a plain function, a task, a module)."""


class UnknownFormat(LedgerflowError, ValueError):
    """An output format that is not one of those offered (`lineage graph --format`)."""


class UnknownEvent(LedgerError, TypeError):
    """The ledger was handed something that is not an event it records (a bug of the caller)."""


class QueryError(LedgerError, ValueError):
    """A question put to the ledger that cannot be answered as asked: SQL that does not parse,
    writes, or fails; a bad memory or time limit; a negative walk depth. The caller's input is
    wrong, not the ledger (the CLI exits 2)."""


class NoLedger(LedgerError):
    """A command that reads the ledger found none where it looked (`Home.looked_in`)."""


class RayClusterError(LedgerflowError, ConnectionError):
    """The Ray cluster a run was pointed at cannot be reached or joined (the message names it),
    or the warm local runtime could not be started or stopped."""


class CancelError(LedgerflowError):
    """An execution could not be cancelled: it is not running, runs on another host, or did not
    stop in time. The message says which, and what to do."""


class LedgerUnwritable(LedgerError):
    """The home refused a write (read-only, full, no permission): readers go on with what the
    ledger file holds; recording fails with this, naming the file."""


class LedgerBusy(LedgerError):
    """Another process held the ledger file for longer than this one would wait (a reader's
    wait: recording never waits for the file)."""


class RefError(LedgerflowError, LookupError):
    """A REF (digest, digest prefix, execution id, EXECUTION_ID:step) names nothing, or more than one thing."""


class ResourceError(LedgerflowError, ValueError):
    """A step asks for more than any node of the cluster can ever give; raised before anything runs."""


class RegistryError(LedgerflowError, ValueError):
    """A model registry request that cannot be done: a bad name, not a Model, no earlier version to roll back to."""


class RetentionError(LedgerflowError, ValueError):
    """A tag or gc request that cannot be done: a bad tag name, removing a tag that isn't there, no gc policy."""


class ExchangeError(LedgerflowError, ValueError):
    """A ledger export or import that can't be done: not an export, a newer schema, a non-empty target directory."""


class LedgerServerError(LedgerError):
    """The team ledger's PostgreSQL server cannot be used: unreachable, credentials refused, no
    ledger in that database, or a row it cannot store. The message says which and what to do."""


class UnsupportedType(LedgerflowError, TypeError):
    """A type annotation Ledgerflow cannot handle; the message says what to use instead
    (`types.support.check_supported`)."""


class TypeMismatch(LedgerflowError, TypeError):
    """A value does not match its declared type; `where` locates it inside the value
    (worded by `types.conform.mismatch`)."""

    def __init__(self, message: str, where: str):
        super().__init__(message)
        self.where = where


class NotInStep(LedgerflowError, RuntimeError):
    """`current()` was called outside a running step."""


class NotARegularFile(LedgerflowError, OSError):
    """`filename` is a FIFO, a device, a socket, a directory or (not followed) a symbolic link
    where a plain file belongs (`regular_files`). Also an OSError: the machine said no."""

    def __init__(self, path, what: str):
        import errno

        super().__init__(errno.EINVAL, f"it is {what}, not a regular file", str(path))
        self.what = what

    def __str__(self) -> str:
        return f"{self.strerror}: {self.filename}"
