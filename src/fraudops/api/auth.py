"""API keys for machine clients: random tokens, stored only as SHA-256 hashes.

A key is 32 random bytes (URL-safe base64), so a fast hash is the right tool: there is no
password to guess, and a lookup must cost microseconds on every request. Comparison is
constant-time. A missing or wrong key gets a bare 401 — nothing about which keys exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from fraudops.errors import AuthError, ConfigError

HEADER = "X-API-Key"
_HEX = frozenset("0123456789abcdef")


def new_key() -> str:
    """A fresh random API key."""
    return "fo_" + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """The SHA-256 hex digest under which ``key`` is configured."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The configured key hashes; checks a presented key against them."""

    def __init__(self, hashes: Iterable[str]) -> None:
        self._hashes = tuple(h.strip().lower() for h in hashes)
        bad = [h for h in self._hashes if len(h) != 64 or not set(h) <= _HEX]
        if bad:
            raise ConfigError(
                f"api.key_hashes: {len(bad)} entries are not SHA-256 hex digests"
                " (use `fraudops keys new` to make a key and its hash)"
            )

    def __bool__(self) -> bool:
        return bool(self._hashes)

    def check(self, presented: str | None) -> None:
        """Raise AuthError unless ``presented`` is a configured key."""
        if not presented:
            raise AuthError("missing or invalid API key")
        digest = key_hash(presented)
        # Compare against every hash so the time taken says nothing about which matched.
        matched = False
        for configured in self._hashes:
            matched |= hmac.compare_digest(digest, configured)
        if not matched:
            raise AuthError("missing or invalid API key")
