"""Ingest tokens: random, shown once, stored as a SHA-256 digest.

A token carries 256 random bits, so a fast digest is enough (nothing to brute-force, unlike a
password) and a reconnecting fleet costs the site microseconds, not a PBKDF2 round each.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "fgt_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(hash_token(token), digest)
