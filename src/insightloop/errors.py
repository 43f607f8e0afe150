"""Errors of the program (not of the data: bad records are data, see types.BadRecord).

Every error says whether retrying can help: ``TransientError`` (retry with back-off) or
``TerminalError`` (a retry repeats the failure; a person or a config change must act).
Messages carry the ids needed to find the thing (file, shard, offset, table, key).
"""


class InsightloopError(Exception):
    """Base of every error raised on purpose by insightloop."""


class TransientError(InsightloopError):
    """A retry may succeed (busy resource, conflicting commit, log behind)."""


class TerminalError(InsightloopError):
    """A retry will fail the same way until something is changed."""


class ConfigError(TerminalError):
    """The configuration is missing, malformed or names an impossible value."""


class LogCorruptError(TerminalError):
    """A durable log file holds bytes that are not a record where a complete record must be."""


class LogBusyError(TransientError):
    """Another process holds the writer lock of a log shard."""


class LogFullError(TransientError):
    """The log's consumers are too far behind to accept more records now (back-pressure)."""


class CommitConflictError(TransientError):
    """Another writer committed to the same table first; refresh and rebuild the commit."""
