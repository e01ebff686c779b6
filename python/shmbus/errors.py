"""Exceptions of the shmbus package.

Every failure of the library is raised as :class:`Error` (or a subclass), with the SHMBUS
status name in ``.code`` (``"SHMBUS_EFULL"``), its number in ``.status`` and the library's
detail in ``.detail``. Subclasses exist where a caller branches on the cause.
"""
import errno as _errno
import re as _re

__all__ = ["Error", "Full", "Timeout", "ConfigError", "AccessError", "InvalidArgument",
           "Incompatible", "NotFound"]


class Error(Exception):
    """A shmbus call failed: ``.code`` the SHMBUS name, ``.status`` the number (< 0),
    ``.detail`` what the library said about it, ``.operation`` the call."""

    code = "SHMBUS_E?"
    status = 0
    detail = ""
    operation = ""

    def __str__(self):
        text = self.args[0] if self.args else ""
        return f"{self.operation}: {text}" if self.operation else text


class Full(Error):
    """SHMBUS_EFULL: the pool has no free block of that size (topic policy: fail at once)."""


class Timeout(Error):
    """SHMBUS_ETIMEDOUT: waited the topic's wait_ms for a free block, none came."""


class InvalidArgument(Error, ValueError):
    """SHMBUS_EINVAL / SHMBUS_ETOOBIG: an argument the library refused (the detail says why)."""


class NotFound(Error, LookupError):
    """SHMBUS_ENOENT: no such domain, pool, topic or node."""


class Incompatible(Error):
    """SHMBUS_EINCOMPAT: the running domain defines a pool or topic differently."""


class ConfigError(Error):
    """SHMBUS_ECONFIG: a domain file with errors. ``.file``, ``.path`` (the JSON path, e.g.
    ``$.topics[1].pool``, or ``line:col`` of a syntax error) and ``.reason``."""

    file = None
    path = None
    reason = None


class AccessError(Error, PermissionError):
    """SHMBUS_EACCES: not allowed by the domain's file modes (also a PermissionError)."""


_BY_CODE = {
    "SHMBUS_EFULL": Full,
    "SHMBUS_ETIMEDOUT": Timeout,
    "SHMBUS_EINVAL": InvalidArgument,
    "SHMBUS_ETOOBIG": InvalidArgument,
    "SHMBUS_ENOENT": NotFound,
    "SHMBUS_EINCOMPAT": Incompatible,
    "SHMBUS_ECONFIG": ConfigError,
    "SHMBUS_EACCES": AccessError,
}

# "<file>: <json path>: <reason>" or "<file>:<line>:<col>: syntax error: <reason>"
_CONFIG_PATH = _re.compile(r"^(?P<file>.*?): (?P<path>\$[^:]*): (?P<reason>.*)$", _re.S)
_CONFIG_SYNTAX = _re.compile(r"^(?P<file>.*?):(?P<path>\d+:\d+): (?P<reason>.*)$", _re.S)


def _make(status, code, message, detail):
    """Called by the extension for every failed call: the exception to raise."""
    cls = _BY_CODE.get(code, Error)
    text = f"{detail} ({code})" if detail else f"{message} ({code})"
    exc = cls(text)
    exc.code, exc.status, exc.detail = code, status, detail
    if cls is AccessError:
        exc.errno, exc.strerror = _errno.EACCES, message
    if cls is ConfigError:
        m = _CONFIG_PATH.match(detail) or _CONFIG_SYNTAX.match(detail)
        if m:
            exc.file, exc.path, exc.reason = m.group("file"), m.group("path"), m.group("reason")
        else:
            exc.reason = detail or message
    return exc
