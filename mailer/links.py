"""Subscribers' links: signed, per-purpose capability tokens and the URLs that carry them.

A token binds a subscriber id to their current token version; bumping the version (on
erase, or on request) revokes every link sent before. Nothing in a URL is a guessable id.
A confirm link sent for a subscribe request of a known address binds that request's id
too, so it confirms exactly what was asked in that request, nothing asked later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from mailer.clock import Clock

PURPOSES = ("confirm", "preferences", "unsubscribe")
_PURPOSE_SET = frozenset(PURPOSES)
MAX_PLAIN_PAYLOAD = 15
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_IPAD = bytes(x ^ 0x36 for x in range(256))  # HMAC's pads as translate tables (RFC 2104)
_OPAD = bytes(x ^ 0x5C for x in range(256))


class TokenInvalid(Exception):
    """A token was tampered with, made for another purpose, or is malformed."""


class TokenExpired(TokenInvalid):
    """A token was genuine but is too old for its purpose."""


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: who, which version of their links, and (confirm links
    only) which pending subscribe request it confirms."""

    subscriber_id: int
    version: int
    request: int | None = None


@dataclass(frozen=True)
class Links:
    """Builds and reads subscriber links for one installation."""

    secret_key: str
    base_url: str
    clock: Clock | None = None  # stamps and ages tokens; None = the system clock

    @cached_property
    def _serializers(self) -> dict[str, URLSafeTimedSerializer]:
        signer = _clock_signer(self.clock) if self.clock else TimestampSigner
        return {purpose: URLSafeTimedSerializer(self.secret_key, salt=f"weerbaarnl.{purpose}",
                                                signer=signer) for purpose in PURPOSES}

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        return self._serializers[purpose]

    @cached_property
    def _hmac_states(self) -> dict[str, tuple[Any, Any]]:
        # itsdangerous's default key derivation ("django-concat", SHA-1), computed once
        # instead of once per token: a send signs two tokens per recipient. HMAC's inner
        # and outer hash states after the padded key (RFC 2104) are kept too, so a token
        # costs two copies of a SHA-1 state instead of a new HMAC object.
        secret = self.secret_key.encode()
        states = {}
        for p in PURPOSES:
            key = hashlib.sha1(f"weerbaarnl.{p}".encode() + b"signer" + secret).digest()
            block = key.ljust(hashlib.sha1().block_size, b"\0")
            states[p] = (hashlib.sha1(block.translate(_IPAD)),
                         hashlib.sha1(block.translate(_OPAD)))
        return states

    def token(self, purpose: str, subscriber_id: int, version: int) -> str:
        """A signed token for one purpose; byte for byte what itsdangerous's
        URLSafeTimedSerializer makes (tests check), at a fraction of the cost."""
        return self.tokens((purpose,), subscriber_id, version)[0]

    def tokens(self, purposes: tuple[str, ...], subscriber_id: int, version: int) -> list[str]:
        """Signed tokens of one subscriber for several purposes, each exactly what `token`
        makes: they share payload and timestamp, so that part is encoded once (a send
        signs two tokens per recipient)."""
        value = self._unsigned(subscriber_id, version, self._stamp(self._now()))
        if value is None or not _PURPOSE_SET.issuperset(purposes):
            return [self._serializer(p).dumps([subscriber_id, version]) for p in purposes]
        return [(value + b"." + _b64(self._mac(p, value))).decode() for p in purposes]

    def _unsigned(self, subscriber_id: int, version: int, stamp: bytes) -> bytes | None:
        """The signed part of a token (payload.timestamp, the encoded `stamp`), or None where
        only itsdangerous can make it (a payload it would compress)."""
        if type(subscriber_id) is int and type(version) is int:
            payload = f"[{subscriber_id},{version}]".encode()  # what compact JSON gives
        else:
            payload = json.dumps([subscriber_id, version], separators=(",", ":")).encode()
        # itsdangerous zlib-compresses a payload when that makes it 2+ bytes shorter; with
        # fixed Huffman codes, 15 bytes of "[int,int]" never shrink that much (at least 5
        # literals of 8 bits, 10 bits of block framing, 6 bytes of zlib framing), while a
        # 16-byte one can ("[1,111111111111]"). Ids up to 10 digits stay on the fast path.
        if len(payload) > MAX_PLAIN_PAYLOAD:
            return None
        return _b64(payload) + b"." + stamp

    def _now(self) -> int:
        """Seconds since the epoch by our clock (MAILER_NOW and tests), as tokens stamp."""
        return int(self.clock.now().timestamp() if self.clock else time.time())

    def _mac(self, purpose: str, signed: bytes) -> bytes:
        """HMAC-SHA1 of `signed` under the purpose's derived key, from the kept states."""
        return _hmac_sha1(self._hmac_states[purpose], signed)

    @cached_property
    def _stamps(self) -> dict[int, bytes]:
        return {}

    def _stamp(self, now: int) -> bytes:
        """The encoded timestamp; thousands of tokens share a second, so each second is
        encoded once (only the latest is kept; threads racing here write the same bytes)."""
        stamps = self._stamps
        stamp = stamps.get(now)
        if stamp is None:
            stamp = _b64(now.to_bytes((now.bit_length() + 7) // 8, "big"))  # 0 -> b""
            stamps.clear()
            stamps[now] = stamp
        return stamp

    def read(self, purpose: str, token: str, max_age: int | None = None) -> TokenClaims:
        """Verify a token; raises TokenExpired or TokenInvalid."""
        claims = self._read_own(purpose, token, max_age)
        if claims is not None:
            return claims
        # Anything else (tampered, expired, foreign, odd encodings) gets itsdangerous's
        # own verdict, so the fast reading above never changes what is accepted.
        try:
            data = self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenExpired(purpose) from None
        except BadSignature:
            raise TokenInvalid(purpose) from None
        sizes = (2, 3) if purpose == "confirm" else (2,)
        if not (isinstance(data, list) and len(data) in sizes
                and all(isinstance(x, int) for x in data)):
            raise TokenInvalid(purpose)
        return TokenClaims(*data)

    def _read_own(self, purpose: str, token: str, max_age: int | None) -> TokenClaims | None:
        """The claims of a genuine, fresh token in exactly the form `token` makes, checked
        with the kept HMAC states (a one-click POST reads one per request); None for anything
        else, which `read` then hands to itsdangerous."""
        if purpose not in PURPOSES or not token.isascii():
            return None
        signed, _, signature = token.encode().rpartition(b".")
        payload, _, stamp = signed.rpartition(b".")
        if not hmac.compare_digest(_b64(self._mac(purpose, signed)), signature):
            return None
        try:
            claims = _SIMPLE_CLAIMS.fullmatch(base64.urlsafe_b64decode(_padded(payload)))
            signed_at = int.from_bytes(base64.urlsafe_b64decode(_padded(stamp)), "big")
        except ValueError:
            return None
        if claims is None or payload.startswith(b"."):  # a leading "." means compressed
            return None
        if max_age is not None and not 0 <= self._now() - signed_at <= max_age:
            return None
        return TokenClaims(subscriber_id=int(claims[1]), version=int(claims[2]))

    def url(self, path: str) -> str:
        """An absolute URL on the subscriber site."""
        return f"{self._base}/{path.lstrip('/')}"

    @cached_property
    def _base(self) -> str:
        return self.base_url.rstrip("/")

    def unsubscribe_url(self, subscriber_id: int, version: int) -> str:
        """The one-click unsubscribe URL (GET shows a page, POST unsubscribes)."""
        return self.url(f"afmelden/{self.token('unsubscribe', subscriber_id, version)}")

    def personal_urls(self, subscriber_id: int, version: int) -> tuple[str, str]:
        """The unsubscribe and preferences URLs every newsletter message carries, as
        `unsubscribe_url` and `preferences_url` give them, with their tokens made together."""
        unsubscribe, preferences = self.tokens(("unsubscribe", "preferences"),
                                               subscriber_id, version)
        return f"{self._base}/afmelden/{unsubscribe}", f"{self._base}/voorkeuren/{preferences}"

    def personal_urls_of(self, subscribers: Iterable[tuple[int, int]]
                         ) -> list[tuple[str, str]]:
        """`personal_urls` of many (subscriber id, token version) pairs, signed at one
        instant: a send signs a batch at a time, so the clock is read, the timestamp
        encoded and the purposes' states looked up once per batch, not per recipient."""
        stamp = self._stamp(self._now())
        unsubscribe, preferences = (self._hmac_states[p] for p in ("unsubscribe", "preferences"))
        to_unsubscribe, to_preferences = f"{self._base}/afmelden/", f"{self._base}/voorkeuren/"
        urls = []
        for subscriber_id, version in subscribers:
            signed = self._unsigned(subscriber_id, version, stamp)
            if signed is None:
                urls.append(self.personal_urls(subscriber_id, version))
                continue
            signed_dot = signed + b"."
            urls.append((
                to_unsubscribe + (signed_dot + _b64(_hmac_sha1(unsubscribe, signed))).decode(),
                to_preferences + (signed_dot + _b64(_hmac_sha1(preferences, signed))).decode()))
        return urls

    def preferences_url(self, subscriber_id: int, version: int) -> str:
        """The preference centre URL."""
        return self.url(f"voorkeuren/{self.token('preferences', subscriber_id, version)}")

    def confirm_url(self, subscriber_id: int, version: int, request: int | None = None) -> str:
        """The double opt-in confirmation URL; with a request id, for that request only."""
        if request is None:
            return self.url(f"bevestigen/{self.token('confirm', subscriber_id, version)}")
        token = self._serializer("confirm").dumps([subscriber_id, version, request])
        return self.url(f"bevestigen/{token}")

    def web_version_url(self, period: str) -> str:
        """The public web version of an issue, without personal links."""
        return self.url(f"archief/{period}")


# The JSON `token` signs for two plain ints: "[id,version]", no spaces, no leading zeros.
_SIMPLE_CLAIMS = re.compile(rb"\[(0|[1-9][0-9]*),(0|[1-9][0-9]*)\]")


def _hmac_sha1(states: tuple[Any, Any], signed: bytes) -> bytes:
    """HMAC-SHA1 of `signed` from a key's kept inner and outer hash states (RFC 2104)."""
    inner, outer = states
    inner = inner.copy()
    inner.update(signed)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.digest()


def _b64(data: bytes) -> bytes:
    # base64.urlsafe_b64encode in one C call plus a translate.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _padded(data: bytes) -> bytes:
    return data + b"=" * (-len(data) % 4)


def _clock_signer(clock: Clock) -> type[TimestampSigner]:
    """A TimestampSigner that tells time by our clock, so MAILER_NOW and tests age tokens."""

    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock.now().timestamp())

    return ClockSigner
