"""Redaction of recordings: real values out, stable stand-ins in.

A recording must be safe to commit, yet replayable. So values are not blanked out but replaced
by *stand-ins* of the same shape, the same value always by the same stand-in within one
recording (a :class:`Redactor` per recording):

- the OTP code: a code of the same length and letter/digit pattern (``730419`` -> ``000001``),
  also where it is spelled out for voice (``7. 3. 0. 4. 1. 9`` -> ``0. 0. 0. 0. 0. 1``, any
  separators);
- phone numbers (any ``+`` E.164 number in any string, and each one's digits without ``+``): a
  valid number of the same country, keeping the country code and the first national digits
  (so routing by prefix replays the same) and replacing the rest;
- secrets and credentials (the action's secrets, a provider's credentials) of 4 characters or
  more: a value of the same character classes, or for a URL an ``https://NAME.redacted.invalid``
  origin; their URL-encoded and JSON-escaped forms too. Names listed in the tenant's
  ``record_keep`` are kept as they are (a base URL or a routing table is not a secret);
- headers that carry credentials (``Authorization``, ``*api-key*``, ``*token*``, ``*secret*``,
  cookies, signatures): the whole value becomes ``******`` (:data:`runtime.masking.MASK`);
- tokens in JSON answers (``access_token``, ``refresh_token``, ``id_token``, ``token``,
  ``client_secret``, ``password``): a stand-in token, the same for the same value, so an action
  that caches a token and sends it back replays the same way.

Redaction is linear in the text: one pass finds secrets (a literal alternation, rebuilt only
when a secret or token is learnt) and number-like digit runs (looked up in a dict, however many
numbers are known), a second finds code-shaped runs (looked up the same way). A :class:`Budget`
bounds one recording entry: strings scanned, characters scanned, numbers given a real-looking
stand-in; past it, strings are cut with a marker (:data:`TRUNCATED`).

Replays run in stand-in space: the action gets the redacted event and the stand-in secrets, so
the requests it builds equal the redacted recorded ones and nothing needs translating back.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets as _random
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import phonenumbers

from runtime.masking import MASK, Masker

__all__ = ["REDACTED", "SENSITIVE_HEADER", "TRUNCATED", "Budget", "Redactor", "is_sensitive_header"]

REDACTED = MASK
TRUNCATED = "…[truncated by the recorder]"
SENSITIVE_HEADER = re.compile(
    r"authorization|api[-_]?key|token|secret|password|cookie|signature|credential|session",
    re.IGNORECASE,
)
_TOKEN_KEYS = frozenset(
    {"access_token", "refresh_token", "id_token", "token", "client_secret", "password", "secret"}
)
_PHONE = re.compile(r"(?<![0-9A-Za-z])\+[1-9][0-9]{6,14}(?![0-9])")
_NUMBER = r"(?<![0-9])\+?[0-9]{7,15}(?![0-9])"  # a known number with or without its +
_SEPARATOR = r"[\s.,;:\-/]{0,3}"
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")


class Budget:
    """What one recording entry may cost: strings and characters scanned, and numbers given a
    real-looking stand-in (each costs phonenumbers look-ups); past that, cheap stand-ins."""

    __slots__ = ("chars", "phones", "strings")

    def __init__(
        self, *, strings: int = 20_000, chars: int = 4 * 1024 * 1024, phones: int = 2_000
    ) -> None:
        self.strings = strings
        self.chars = chars
        self.phones = phones

    def take(self, value: str) -> str:
        """``value``, cut with :data:`TRUNCATED` where the budget runs out."""
        self.strings -= 1
        if self.strings < 0 or self.chars <= 0:
            return TRUNCATED
        self.chars -= len(value)
        if self.chars >= 0:
            return value
        return value[: len(value) + self.chars] + TRUNCATED


def is_sensitive_header(name: str) -> bool:
    return SENSITIVE_HEADER.search(name) is not None


class Redactor:
    """Replaces the sensitive values of one recording by stable stand-ins.

    ``seed`` makes the secret stand-ins reproducible (a regenerated test recording stays the
    same); by default each recording gets a random one.
    """

    def __init__(self, *, seed: str | None = None) -> None:
        self._seed = seed if seed is not None else _random.token_hex(16)
        self._codes: dict[str, str] = {}
        self._phones: dict[str, str] = {}
        self._secrets: dict[str, str] = {}  # every form of a secret -> its stand-in form
        self._tokens: dict[str, str] = {}
        self._numbers: dict[str, str] = {}  # "+4479..." and "4479..." -> stand-in forms
        self._taken: set[str] = set()  # phone stand-ins given out
        self._code_lengths: set[int] = set()
        self._pattern: re.Pattern[str] | None = None
        self._code_patterns: list[re.Pattern[str]] | None = None
        self.budget: Budget | None = None  # set per recording entry by the recorder
        self.guard: Masker | None = None  # masks what is left of real secrets, per entry

    # -- learning the values ---------------------------------------------------------------

    def code(self, code: str) -> str:
        """The stand-in of an OTP code (learnt on first sight)."""
        if not code:
            return code
        known = self._codes.get(code)
        if known is None:
            number = str(len(self._codes) + 1)
            digits = iter(number.zfill(len(code))[-len(code) :])
            known = "".join(
                next(digits) if ch.isdigit() else ("X" if ch.isupper() else "x") for ch in code
            )
            self._codes[code] = known
            if len(code) not in self._code_lengths:
                self._code_lengths.add(len(code))
                self._code_patterns = None
        return known

    def phone(self, number: str) -> str:
        """The stand-in of an E.164 number (learnt on first sight)."""
        known = self._phones.get(number)
        if known is None:
            budget = self.budget
            if budget is not None and budget.phones <= 0:
                digits = len(number) - 1
                known = "+" + str(len(self._taken) + 1).zfill(digits)[-digits:]
            else:
                if budget is not None:
                    budget.phones -= 1
                known = self._phone_stand_in(number)
            self._phones[number] = known
            self._taken.add(known)
            self._numbers[number] = known
            self._numbers[number[1:]] = known[1:]
        return known

    def secret(self, name: str, value: str) -> str:
        """The stand-in of the secret ``name`` (values under 4 characters are kept)."""
        if len(value) < 4:
            return value
        known = self._secrets.get(value)
        if known is not None:
            return known
        if re.match(r"https?://", value):
            stand_in = f"https://{_label(name)}.redacted.invalid"
            parts = urlsplit(value)
            stripped = value.rstrip("/")
            self._learn(stripped, stand_in)
            if stripped != value:
                self._learn(value, stand_in + value[len(stripped) :])
            if parts.netloc and len(parts.hostname or "") >= 4:
                self._learn(parts.netloc, f"{_label(name)}.redacted.invalid")
                self._learn(parts.hostname or "", f"{_label(name)}.redacted.invalid")
        else:
            stand_in = self._shaped(name, value)
            self._learn(value, stand_in)
        self._pattern = None
        return self._secrets[value]

    def secrets(self, values: Mapping[str, str], keep: Iterable[str] = ()) -> dict[str, str]:
        """Stand-ins for a mapping of secrets; names in ``keep`` keep their value."""
        kept = set(keep)
        return {
            name: value if name in kept else self.secret(name, value)
            for name, value in values.items()
        }

    def _learn(self, value: str, stand_in: str) -> None:
        for real, fake in (
            (value, stand_in),
            (quote_plus(value, safe=""), quote_plus(stand_in, safe="")),
            (quote(value, safe=""), quote(stand_in, safe="")),
            (json.dumps(value)[1:-1], json.dumps(stand_in)[1:-1]),
        ):
            if len(real) >= 4:
                self._secrets.setdefault(real, fake)

    def _shaped(self, name: str, value: str) -> str:
        """Same length and character classes, from a hash of (seed, name, value)."""
        stream = hashlib.sha256(f"{self._seed}\0{name}\0{value}".encode()).digest()
        while len(stream) < len(value):
            stream += hashlib.sha256(stream).digest()
        prefix = re.match(r"[A-Z]{1,2}(?=[0-9a-f])", value)
        out = list(prefix.group(0)) if prefix else []
        for i, ch in enumerate(value[len(out) :], start=len(out)):
            b = stream[i]
            if ch.isdigit():
                out.append("0123456789"[b % 10])
            elif ch in "abcdef":
                out.append("abcdef"[b % 6])
            elif ch.islower():
                out.append("abcdefghijklmnopqrstuvwxyz"[b % 26])
            elif ch.isupper():
                out.append("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[b % 26])
            else:
                out.append(ch)
        result = "".join(out)
        return result if result != value else result[::-1]

    def _phone_stand_in(self, number: str) -> str:
        taken = self._taken
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is not None:
            cc = str(parsed.country_code)
            national = phonenumbers.national_significant_number(parsed)
            for keep in (3, 2, 1, 0):
                if keep >= len(national):
                    continue
                width = len(national) - keep
                for fill in "0525":
                    for n in range(len(taken) + 1, len(taken) + 50):
                        tail = (fill * width + str(n))[-width:]
                        candidate = f"+{cc}{national[:keep]}{tail}"
                        if candidate == number or candidate in taken:
                            continue
                        if _valid(candidate):
                            return candidate
            region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
            example = phonenumbers.example_number(region)
            if example is not None:
                return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        digits = len(number) - 1
        return "+" + str(len(taken) + 1).zfill(digits)[-digits:]

    # -- applying them ---------------------------------------------------------------------

    def text(self, value: str) -> str:
        """``value`` with every known secret, phone number and code replaced."""
        if not value:
            return value
        if self.budget is not None:
            value = self.budget.take(value)
        for number in _PHONE.findall(value):
            self.phone(number)
        value = self._compiled().sub(self._replace, value)
        if self._codes:
            value = self._replace_codes(value)
        if self.guard is not None:
            value = self.guard.text(value)
        return value

    def data(self, value: Any, *, key: str | None = None) -> Any:
        """JSON-like ``value`` with every string redacted; tokens under token keys replaced."""
        if isinstance(value, str):
            if key is not None and key.lower() in _TOKEN_KEYS and len(value) >= 4:
                return self.token(value)
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v, key=k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value

    def token(self, value: str) -> str:
        known = self._tokens.get(value)
        if known is None:
            known = f"redacted-token-{len(self._tokens) + 1}"
            self._tokens[value] = known
            self._learn(value, known)
            self._pattern = None
        return known

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            name: REDACTED if is_sensitive_header(name) else self.text(value)
            for name, value in headers.items()
        }

    def _compiled(self) -> re.Pattern[str]:
        """Secrets (longest first), then any number-like run: rebuilt only for a new secret."""
        if self._pattern is None:
            secrets = sorted(self._secrets, key=lambda real: (-len(real), real))
            alternatives = [f"(?P<secret>{'|'.join(map(re.escape, secrets))})"] if secrets else []
            self._pattern = re.compile("|".join([*alternatives, f"(?P<number>{_NUMBER})"]))
        return self._pattern

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if match.lastgroup == "secret":
            return self._secrets[found]
        return self._numbers.get(found, found)

    def _replace_codes(self, text: str) -> str:
        """Code-shaped runs (any separators of up to 3 characters) that are a known code."""
        if self._code_patterns is None:
            self._code_patterns = [
                re.compile(
                    rf"(?<![0-9A-Za-z])(?=([0-9A-Za-z](?:{_SEPARATOR}[0-9A-Za-z]){{{n - 1}}})"
                    r"(?![0-9A-Za-z]))"
                )
                for n in sorted(self._code_lengths, reverse=True)
            ]
        for pattern in self._code_patterns:
            parts: list[str] = []
            end = 0
            for match in pattern.finditer(text):
                start = match.start(1)
                if start < end:
                    continue
                found = match.group(1)
                stand_in = self._codes.get(_NOT_ALNUM.sub("", found))
                if stand_in is None:
                    continue
                chars = iter(stand_in)
                parts += (
                    text[end:start],
                    "".join(next(chars) if c.isalnum() else c for c in found),
                )
                end = match.end(1)
            if parts:
                parts.append(text[end:])
                text = "".join(parts)
        return text


def _valid(number: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, None)))
    except phonenumbers.NumberParseException:
        return False


def _label(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "secret"
