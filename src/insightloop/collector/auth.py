"""Write keys: who may send, and as which source.

Segment SDKs send the write key as the HTTP basic-auth user name with an empty password
(``Authorization: Basic base64("<writeKey>:")``); some also, or only, put ``writeKey`` in
the body. A key in the header decides alone; the body's is used only without a header.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping


class NotBasicAuth(Exception):
    """An ``Authorization`` header that is not basic auth with a user name."""


def basic_auth_user(header: str) -> str:
    """The user name of a basic-auth ``Authorization`` header (the write key)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise NotBasicAuth(f"Authorization scheme {scheme[:20]!r} is not supported: use basic auth")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise NotBasicAuth("Authorization header is not valid base64 of 'writeKey:'") from exc
    user = decoded.partition(":")[0]
    if not user:
        raise NotBasicAuth("Authorization header has an empty user name: send the write key as the user")
    return user


class WriteKeys:
    """Write key → SDK source name, from the configuration."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self._sources = dict(sources)

    def source(self, key: str | None) -> str | None:
        return None if key is None else self._sources.get(key)
