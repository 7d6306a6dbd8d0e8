"""One mask for everything that leaves a sandbox worker, and one escape for tenant text.

A worker is untrusted: what it hands back (result, message id, error, logs, HTTP records) may
carry the tenant's secret values or the OTP code, on purpose or by accident, and may carry
control characters that clear an operator's screen or forge log lines. Every path that logs,
reports, records or prints such a value goes through :class:`Masker` (secrets and the code in
its spellings become :data:`MASK`) and :func:`escape_controls` (control characters become
visible escapes such as ``\\x1b``). :data:`MASK` is the project's only mask string.

The code is masked as digits (``730419``), as digits separated by up to three of
``. , ; : - _ /`` and white space (``7. 3. 0. 4. 1. 9``, ``73-04-19``), and with digits
spelled as English words (``seven three zero``), in any letter case, also next to letters
(``id730419``); not inside a longer run of digits, which would mask parts of phone numbers and
message ids (a code prefixed with a digit on purpose is an encoding, see below). Secrets (4
characters or more) are masked in any letter case (host names are lower-cased on the way) and in
their URL-encoded, JSON-escaped and Python ``repr`` forms, and each line of a multi-line secret
(a PEM key printed line by line) on its own; numbers that spell the code or a secret are masked
in data. A value deliberately encoded otherwise (base64, reversed)
cannot be recognised; the sandbox's egress rules are what keep secrets from leaving then.

Here, in :mod:`runtime.sandbox.shared`, because both sides use it: a worker masks its own result
and logs (at the tenant's cost), the supervisor everything else; :mod:`runtime.masking` adds the
operator logs' filter. No logging here: the worker world holds no logging module.
"""

from __future__ import annotations

import contextlib
import json
import re
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "CHECK_BUDGET",
    "KEPT_FORM_CHARS",
    "MASK",
    "MASK_BUDGET",
    "MAX_MATCHES",
    "MAX_WALK",
    "MIN_SECRET_LENGTH",
    "MIN_SECRET_LINE",
    "SECRET_SETS",
    "TENANT_FORM_CHARS",
    "TENANT_SETS",
    "TRIE_FORM",
    "Masker",
    "SecretForms",
    "code_of_event",
    "compiled_forms",
    "escape_controls",
    "forms_compiled",
    "secrets_key",
]

MASK = "******"
"""What a masked secret or code reads as, everywhere (logs, reports, recordings, CLI)."""

MIN_SECRET_LENGTH = 4
"""Shorter secret values are not masked: masking ``"GB"`` would mangle every text."""

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# possessive: never given back, so a text of separators has one way to match, not one for
# every split of them (a code made of separators once backtracked for hours: red team)
_SEPARATOR = r"[\s.,;:_/\-]{0,3}+"

# C0 (tab and newline included: every field we show is one line), DEL, C1, and the Unicode
# bidi controls that reorder what a terminal shows (Trojan Source, CVE-2021-42574).
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROLS = [*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0)), *_BIDI]
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES = {
    ord(ch): _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    for ch in _CONTROLS
}
_ESCAPES_KEEP_NEWLINE = {k: v for k, v in _ESCAPES.items() if k != ord("\n")}
_HAS_CONTROL = re.compile("[" + re.escape("".join(_CONTROLS)) + "]")


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with control characters shown as escapes (ESC as ``\\x1b``, LF as ``\\n``).

    ``keep_newlines`` keeps LF for multi-line texts (a traceback in an operator log); CR is
    still escaped, so no line can be overwritten.
    """
    if _HAS_CONTROL.search(text) is None:
        return text
    return text.translate(_ESCAPES_KEEP_NEWLINE if keep_newlines else _ESCAPES)


MAX_SECRET_LINES = 64
"""Lines of one multi-line secret masked on their own (a 4096-bit PEM key has 50)."""

MIN_SECRET_LINE = 8
"""A line of a multi-line secret (a PEM key) this long or longer is masked on its own too:
``print`` output reaches the log one line at a time. Shorter lines (``-----``) are too common."""


def _secret_forms(value: str) -> set[str]:
    forms = {value, quote(value), quote(value, safe=""), quote_plus(value, safe="")}
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    # Python's spellings: repr() (in a printed list, an error message) and ascii()
    forms.add(repr(value)[1:-1])
    forms.add(ascii(value)[1:-1])
    # a host name holding the secret reaches the network (and errors) as IDNA, xn--...: as
    # IDNA 2003 maps it (ß as ss), as IDNA 2008 keeps it (httpx: ß itself), and lower-cased
    # by str.lower first (İ as i and a combining dot). Only for what can be a host name
    # (labels of 63 characters or fewer): Punycode's encoder takes time quadratic in a label.
    if (
        not value.isascii()
        and len(value) <= MAX_HOST
        and all(len(label) <= MAX_LABEL for label in value.split("."))
    ):
        with contextlib.suppress(UnicodeError, LookupError):
            forms.add(value.encode("idna").decode("ascii"))
        with contextlib.suppress(UnicodeError, LookupError):
            forms.add(_punycoded(value.lower()))
    forms.add(value.lower())
    forms = {form for form in forms if len(form) >= MIN_SECRET_LENGTH}
    lines = _LINE_BREAK.split(value.strip())
    if len(lines) > 1:  # at most MAX_SECRET_LINES of them: what a tenant can make us compile
        lines = [line for line in map(str.strip, lines) if len(line) >= MIN_SECRET_LINE]
        forms |= set(lines[:MAX_SECRET_LINES])
    return forms


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


MAX_HOST = 253
"""The longest host name (RFC 1035), so the longest text an IDNA spelling is made of."""

MAX_LABEL = 63
"""The longest label of a host name (RFC 1035)."""


def _punycoded(host: str) -> str:
    """``host`` with each label outside ASCII as IDNA 2008 writes it (``xn--`` + Punycode,
    with no mapping but the lower case the caller applied)."""
    return ".".join(
        label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
        for label in host.split(".")
    )


TRIE_FORM = 64
"""Secret forms up to this length are found by the trie-shaped regex; longer ones by their
first this many characters, then compared (a regex path that long, tried at every position,
would cost the text's length times the form's; so would ``str.find``, whose search of a text
under 2,500 characters compares up to the form's length at each position)."""

MAX_MATCHES = 10_000
"""More secrets than this in one text and the whole text is masked: the work stays bounded."""


def _fold_table() -> dict[int, int]:
    """Each code point (planes 0 and 1: every cased script) to the one that stands for its
    class under ``re.IGNORECASE``: the simple lower case, then sre's extra equivalences (the
    dotless and dotted i with ``i``, the long s with ``s``, the final sigma with the sigma,
    the Kelvin sign with ``k``).
    One code point for one: folding keeps every position, whatever the context (``str.lower``
    changes ``Σ`` by its neighbours, and ``İ`` into two characters)."""
    extra: dict[int, tuple[int, ...]] = {}
    with contextlib.suppress(ImportError):  # private to re: what its IGNORECASE matching uses
        from re._casefix import _EXTRA_CASES  # type: ignore[import-not-found]

        extra = _EXTRA_CASES
    table: dict[int, int] = {}
    for point in range(0x20000):
        low = ord(chr(point).lower()[0]) if len(chr(point).lower()) == 1 else point
        if point == 0x130:  # İ: its simple lower case is i (str.lower gives i + a dot)
            low = 0x69
        canonical = min((low, *extra.get(low, ())))
        if canonical != point:
            table[point] = canonical
    return table


_FOLD = _fold_table()


def _fold(text: str) -> str:
    """``text`` with each character replaced by its class under ``re.IGNORECASE``
    (:func:`_fold_table`): the same length, so every position stays."""
    if text.isascii():  # most texts: the ASCII lower case is already each class's own
        return text.lower()
    return text.translate(_FOLD)


def _trie(forms: Iterable[str]) -> dict[str, Any]:
    """``forms`` as a trie of nested dicts; ``""`` marks where a form ends."""
    root: dict[str, Any] = {}
    for form in forms:
        node = root
        for ch in form:
            node = node.setdefault(ch, {})
        node[""] = {}  # a form ends here
    return root


def _trie_pattern(trie: dict[str, Any]) -> str:
    """One regex for the forms of ``trie`` (:func:`_trie`), shaped as it: alternatives at each
    node start with different characters, so matching at a position follows one path, and the
    longest form there wins (each ending is optional, greedy)."""

    def pattern(node: dict[str, Any]) -> str:
        chars = sorted(ch for ch in node if ch)
        branches = [re.escape(ch) + pattern(node[ch]) for ch in chars]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if len(branches) > GUARDED_NODE:  # one class test first: the branches are tried one by
            # one, so a character none of them starts with would cost them all
            body = "(?=[" + "".join(map(re.escape, chars)) + "])" + body
        if "" in node:  # a shorter form ends here: the longer ones are tried first
            return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
        return body

    return pattern(trie)


GUARDED_NODE = 4
"""A trie node with more branches than this tests its characters as one class first."""


def _walk_cost(node: dict[str, Any]) -> int:
    """The most alternatives a :func:`_trie_pattern` regex of the trie ``node`` tries at one
    position of a text: the sum of the branches at each node, along the trie's costliest path
    (the regex engine tries a node's branches one after another)."""
    children = [child for ch, child in node.items() if ch]
    return max((len(children) + _walk_cost(child) for child in children), default=0)


def _earliest_tail(prefixes: list[str], window: str) -> int | None:
    """Where the longest end of ``window`` (two characters or more) that starts one of the
    sorted ``prefixes`` begins, or None: a binary search per position, at most
    ``len(window)`` of them (a window is at most :data:`TRIE_FORM` characters)."""
    for begin in range(len(window) - 1):
        tail = window[begin:]
        found = bisect_left(prefixes, tail)
        if found < len(prefixes) and prefixes[found].startswith(tail):
            return begin
    return None


def _replaced(value: str, spans: list[tuple[int, int]]) -> str:
    """``value`` with each span, overlapping ones merged, replaced by :data:`MASK`."""
    spans.sort()
    parts: list[str] = []
    kept = 0  # value[:kept] is handled
    for start, end in spans:
        if end <= kept:
            continue
        if start < kept:  # overlaps the span just masked: that mask covers it
            kept = end
            continue
        parts += (value[kept:start], MASK)
        kept = end
    parts.append(value[kept:])
    return "".join(parts)


def _code_pattern(code: str) -> str:
    parts = []
    for ch in code:
        if "0" <= ch <= "9":
            parts.append(f"(?:{ch}|{_DIGIT_WORDS[int(ch)]})")
        else:
            parts.append(re.escape(ch))
    return _SEPARATOR.join(parts)


class _SecretForms:
    """The regexes and forms of one set of secrets (see :class:`Masker`)."""

    __slots__ = (
        "chars",
        "costly",
        "long",
        "long_starts",
        "longest",
        "short",
        "shortest",
        "starts",
        "walk",
    )

    def __init__(self, secrets: tuple[str, ...]) -> None:
        forms: set[str] = set()
        for value in secrets:
            forms |= {_fold(form) for form in _secret_forms(value)}
        self.chars = sum(len(form) for form in forms)
        short = [form for form in forms if len(form) <= TRIE_FORM]
        # a lookahead: every position is tried, so secrets that overlap are all found
        short_trie = _trie(short)
        self.short = re.compile(f"(?=({_trie_pattern(short_trie)}))") if short else None
        # Longer forms, by their first TRIE_FORM characters (longest first in each group:
        # where two forms overlap, the longer one decides the span). Their starts are found by
        # one more trie-shaped regex, so the search stays linear in the text however many
        # long forms there are; each start found is then checked against its group.
        groups: dict[str, list[str]] = {}
        for form in sorted((f for f in forms if len(f) > TRIE_FORM), key=lambda f: (-len(f), f)):
            groups.setdefault(form[:TRIE_FORM], []).append(form)
        self.long = {start: tuple(group) for start, group in groups.items()}
        self.longest = max((len(group[0]) for group in groups.values()), default=0)
        starts_trie = _trie(groups)
        self.long_starts = re.compile(f"(?=({_trie_pattern(starts_trie)}))") if groups else None
        # Secrets chosen to make those regexes try many branches at every position of a text
        # (many forms that share long starts): masking with them costs far more than the text
        # is long, so the supervisor masks such a tenant's texts whole instead (Masker).
        # Both regexes run over every text: their costs add up.
        self.walk = _walk_cost(short_trie) + _walk_cost(starts_trie)
        self.costly = self.walk > MAX_WALK
        # sorted, not a regex: the regex of every form's every start was most of a large set's
        # compile time, seconds of C the event loop could not interrupt (red team, pass 6)
        self.starts = sorted({form[:TRIE_FORM] for form in forms})
        self.shortest = min((len(form) for form in forms), default=None)

    def long_spans(self, folded: str) -> list[tuple[int, int]]:
        """The spans of the long forms in ``folded``. Checking a start against its group costs
        at most :data:`CHECK_BUDGET` characters per character of text; past that budget (a
        tenant's pathological secrets), a start found is masked as far as its group's longest
        form reaches: the safe side, and linear."""
        spans: list[tuple[int, int]] = []
        if self.long_starts is None:
            return spans
        budget = CHECK_BUDGET * (len(folded) + TRIE_FORM)
        for found in self.long_starts.finditer(folded):
            start = found.start()
            group = self.long[found.group(1)]
            if budget <= 0:  # the longest form that fits from here
                room = len(folded) - start
                reach = next((len(form) for form in group if len(form) <= room), 0)
                if reach:
                    spans.append((start, start + reach))
            else:
                room = len(folded) - start
                for form in group:  # longest first: the first that matches is the span
                    if len(form) > room:  # cannot be here: nothing to compare
                        continue
                    budget -= len(form)
                    if folded.startswith(form, start):
                        spans.append((start, start + len(form)))
                        break
            if len(spans) > MAX_MATCHES:
                break
        return spans

    def long_tail(self, tail: str) -> int | None:
        """Where the longest end of ``tail`` longer than :data:`TRIE_FORM` characters that
        starts a long form begins, or None; checks bounded as in :meth:`long_spans`."""
        if self.long_starts is None:
            return None
        budget = CHECK_BUDGET * (len(tail) + TRIE_FORM)
        for found in self.long_starts.finditer(tail):
            start = found.start()
            if len(tail) - start <= TRIE_FORM:
                break
            if budget <= 0:
                return start  # a tenant's pathological secrets: the safe side
            end = tail[start:]
            for form in self.long[found.group(1)]:
                budget -= len(end)
                if form.startswith(end):
                    return start
        return None


MAX_WALK = 256
"""The most branches the regexes of a set of secrets may try at one position of a text for the
supervisor to mask with them (:func:`_walk_cost`): about a microsecond. Real secrets (API
keys, tokens, PEM keys line by line) stay far below; a set above it is masked whole there."""

MASK_BUDGET = 2_000_000
"""The masking work the supervisor does for one invocation (characters masked times the set's
walk cost plus :data:`WALK_BASE`), about 10 ms here: past it, that invocation's remaining
texts are masked whole. Real invocations use a few thousand (their texts are a few KiB, and
the worker masks its own result, logs, error and traceback)."""

WALK_BASE = 8
"""What a character costs to mask besides the regexes' branches (the folding, the code)."""

CHECK_BUDGET = 4
"""Characters of long secret forms compared, per character of the text masked, before the
starts of long forms found in it are masked without comparing (see
:meth:`_SecretForms.long_spans`)."""


SecretForms = _SecretForms
"""The compiled forms of one set of secrets (what :func:`compiled_forms` gives)."""

SECRET_SETS = 32
"""Sets of secrets whose compiled forms are kept (a tenant's secrets are the same from one
invocation to the next, and compiling large ones takes a second or more)."""
KEPT_FORM_CHARS = 1_500_000
"""At most this many characters of forms are kept in all (about 45 bytes of memory each once
compiled): tenants with the largest sets the limits allow cannot grow the process by hundreds
of MiB (red team)."""
TENANT_SETS = 2
"""Sets of one tenant's kept at most (its stored secrets, and one more it tests)."""
TENANT_FORM_CHARS = 700_000
"""Characters of forms of one tenant's kept at most (30 PEM keys of 4,096 bits: ~610,000);
a larger set is compiled for each use and never kept. So one tenant, with new sets or one
huge set per request, cannot push every other tenant's sets out and make them compile again
on every invocation (red team)."""

_COMPILED: dict[tuple[str, ...], _SecretForms] = {}
_OWNERS: dict[tuple[str, ...], str] = {}  # the tenant that last used each kept set


def secrets_key(secrets: Iterable[str]) -> tuple[str, ...]:
    """The secrets a :class:`Masker` masks, as the key of their compiled forms."""
    return tuple(sorted({v for v in secrets if type(v) is str and len(v) >= MIN_SECRET_LENGTH}))


def compiled_forms(key: tuple[str, ...], tenant: str | None = None) -> _SecretForms:
    """The compiled forms of the secrets ``key`` names (:func:`secrets_key`), kept for the
    :data:`SECRET_SETS` most recently used sets within :data:`KEPT_FORM_CHARS`, and for a
    ``tenant`` (the supervisor says whose) within its own share: :data:`TENANT_SETS` and
    :data:`TENANT_FORM_CHARS`, its oldest going first. Safe from several threads (a set
    compiled twice at once is kept once)."""
    forms = _COMPILED.pop(key, None)
    if forms is None:
        forms = _SecretForms(key)
    if tenant is not None and forms.chars > TENANT_FORM_CHARS:
        _OWNERS.pop(key, None)
        return forms  # too large to keep: compiled for each use, on its tenant's turn
    _COMPILED[key] = forms  # the most recent last
    if tenant is not None:
        _OWNERS[key] = tenant
        own = [kept for kept in list(_COMPILED) if _OWNERS.get(kept) == tenant]
        while own[:-1] and (
            len(own) > TENANT_SETS or sum(_chars(kept) for kept in own) > TENANT_FORM_CHARS
        ):
            _forget(own.pop(0))
    while len(_COMPILED) > 1 and (
        len(_COMPILED) > SECRET_SETS
        or sum(_chars(kept) for kept in list(_COMPILED)) > KEPT_FORM_CHARS
    ):
        _forget(next(iter(_COMPILED)))
    return forms


def _chars(key: tuple[str, ...]) -> int:
    kept = _COMPILED.get(key)
    return 0 if kept is None else kept.chars


def _forget(key: tuple[str, ...]) -> None:
    _COMPILED.pop(key, None)
    _OWNERS.pop(key, None)


def forms_compiled(key: tuple[str, ...]) -> bool:
    """Whether the forms of ``key`` are compiled already (masking with them costs no compile)."""
    return not key or key in _COMPILED


class Masker:
    """Masks one tenant's secret values and one code out of text and JSON-like data.

    A tenant chooses both its secrets and the text its action returns, so the cost of masking
    must not depend on what they hold: it is linear in the text, whatever the secrets. Forms
    of a secret up to :data:`TRIE_FORM` characters are found by one regex shaped as a trie of
    their lower-cased spellings (at each position of the text, one path of at most that many
    characters); longer forms by a second such regex of their first :data:`TRIE_FORM`
    characters, each start it finds compared with its forms within :data:`CHECK_BUDGET`.
    Spellings that differ only in letter case are one form. The code is a second, small
    pattern. A text that holds secrets more than :data:`MAX_MATCHES` times is masked whole.
    """

    __slots__ = (
        "_budget",
        "_code",
        "_code_text",
        "_exact",
        "_forms",
        "_number_forms",
        "_secrets",
    )

    def __init__(
        self,
        secrets: Iterable[str] = (),
        code: str | None = None,
        *,
        exact: bool = False,
        forms: _SecretForms | None = None,
        budget: int | None = None,
    ) -> None:
        self._exact = exact  # mask with a costly set too (a worker, on its tenant's CPU)
        # the most work (characters times the set's walk cost) this masker may do: past it,
        # texts are masked whole (the supervisor's, per invocation: MASK_BUDGET)
        self._budget = budget
        # compiled on first use (most invocations have nothing to mask), and a set of secrets
        # once per process (compiled_forms)
        self._secrets = secrets_key(secrets)
        self._code_text = code if code and len(code) >= MIN_SECRET_LENGTH else None
        self._forms: _SecretForms | None = forms  # compiled by the caller (on a thread)
        self._code: re.Pattern[str] | None = None
        self._number_forms: frozenset[str] | None = None

    @property
    def budget_spent(self) -> bool:
        """Whether the budget ran out (texts were masked whole since)."""
        return self._budget is not None and self._budget < 0

    def __bool__(self) -> bool:
        return bool(self._secrets) or self._code_text is not None

    def _secret_forms(self) -> _SecretForms | None:
        """The set's compiled forms: handed in (the supervisor compiles a set on a thread, and
        must never again on its event loop: a set evicted meanwhile from the kept ones would
        be), else compiled on first use."""
        if self._forms is None and self._secrets:
            self._forms = compiled_forms(self._secrets)
        return self._forms

    def _numbers(self) -> frozenset[str]:
        """What a JSON number reads as when it spells the code or a secret of digits: a number
        drops leading zeros (the code ``012345`` echoed as ``12345``)."""
        if self._number_forms is None:
            digits = [v for v in (*self._secrets, self._code_text or "") if v.isdigit()]
            # four digits at least (MIN_SECRET_LENGTH): the code 000001 must not mask every 1
            self._number_forms = frozenset(
                str(int(v))
                for v in digits
                if v.isascii() and len(v.lstrip("0")) >= MIN_SECRET_LENGTH
            )
        return self._number_forms

    def _code_pattern(self) -> re.Pattern[str] | None:
        if self._code is None and self._code_text is not None:
            pattern = f"(?<![0-9]){_code_pattern(self._code_text)}(?![0-9])"
            self._code = re.compile(pattern, re.IGNORECASE)
        return self._code

    def text(self, value: str) -> str:
        """``value`` with every secret and spelling of the code replaced by :data:`MASK`: the
        secrets' and the code's spans are found in the same text and replaced together, so
        one never hides the other."""
        spans = self._spans(value)
        if spans is None:
            return MASK
        return _replaced(value, spans) if spans else value

    def _spans(self, value: str) -> list[tuple[int, int]] | None:
        """Where the secrets and the code are in ``value``; None: mask it whole."""
        if not self:
            return []
        forms = self._secret_forms()
        code = self._code_text
        shortest = min(
            forms.shortest if forms is not None and forms.shortest is not None else len(value) + 1,
            len(code) if code is not None else len(value) + 1,  # the code itself, its shortest
        )
        if len(value) < shortest:  # most strings of a result: too short to hold any
            return []
        if forms is not None and forms.costly and not self._exact:
            return None  # the tenant's pathological secrets: the whole text, at no cost
        if self._budget is not None:
            self._budget -= len(value) * ((forms.walk if forms is not None else 0) + WALK_BASE)
            if self._budget < 0:
                return None  # this invocation's masking budget is spent: the safe side
        spans: list[tuple[int, int]] = []
        if forms is not None:
            folded = _fold(value)
            short = forms.short
            if short is not None:
                for found in short.finditer(folded):
                    spans.append(found.span(1))
                    if len(spans) > MAX_MATCHES:
                        return None
            if len(value) > TRIE_FORM:
                spans += forms.long_spans(folded)
                if len(spans) > MAX_MATCHES:
                    return None
        pattern = self._code_pattern()
        if pattern is not None:
            for found in pattern.finditer(value):
                spans.append(found.span())
                if len(spans) > MAX_MATCHES:
                    return None
        return spans

    def line(self, value: str) -> str:
        """:meth:`text`, then control characters escaped: a field shown on one line."""
        return escape_controls(self.text(value))

    def cut_line(self, value: str) -> str:
        """:meth:`line` for a field that may have been cut at a length cap (a log line, an
        error): a secret or the code cut in two leaves its first part at the field's end,
        which :meth:`text` cannot know for one. So the field's last characters (before a
        trailing ``...``) are masked too when they are the start of a secret or of the code,
        two characters or more: masking a little too much there is the safe side. The start
        is looked for in the field as it came, before masking: a secret inside another one,
        masked first, would hide the outer one's start."""
        spans = self._spans(value)
        if spans is None:
            return MASK
        body = value.removesuffix("...").removesuffix("\u2026")
        start = self._cut_start(body)
        if start is not None:
            spans.append((start, len(body)))
        return escape_controls(_replaced(value, spans) if spans else value)

    def _cut_start(self, body: str) -> int | None:
        """Where the longest tail of ``body`` that starts a secret form or the code begins
        (two characters or more), or None. Linear in the forms' lengths, whatever they are:
        one trie-shaped regex for tails up to :data:`TRIE_FORM` characters, and for longer
        forms their starts' regex and comparisons within :data:`CHECK_BUDGET`."""
        if not self:
            return None
        forms = self._secret_forms()
        window = _fold(body[-TRIE_FORM:])
        start = None
        code = self._code_text
        if code is not None:
            for size in range(min(len(code), len(window)), 1, -1):  # its start, longest first
                if window.endswith(code[:size].lower()):
                    start = len(body) - size
                    break
        if forms is None or (forms.costly and not self._exact):  # masked whole by text()
            return start
        found = _earliest_tail(forms.starts, window)
        if found is not None:
            begins = len(body) - len(window) + found
            start = begins if start is None else min(start, begins)
        if forms.long:  # longer tails, of long forms
            tail = _fold(body[-(forms.longest - 1) :])
            begins_in_tail = forms.long_tail(tail)
            if begins_in_tail is not None:
                begins = len(body) - len(tail) + begins_in_tail  # folding keeps lengths
                start = begins if start is None else min(start, begins)
        return start

    def data(self, value: Any) -> Any:
        """JSON-like ``value`` with every string (dict keys too) passed through :meth:`text`."""
        if not self:
            return value
        return self._data(value)

    def _data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if type(value) is int or type(value) is float:  # the code as a JSON number (an echo)
            spelled = repr(value)
            if self.text(spelled) != spelled:
                return MASK
            if type(value) is float and value.is_integer() and abs(value) < 1e300:
                spelled = str(int(value))
            return MASK if spelled in self._numbers() else value
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self._data(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._data(v) for v in value]
        return value


def code_of_event(event: dict[str, Any]) -> str | None:
    """The OTP code in an Auth0 trigger event (``message_options`` or ``notification``)."""
    for part in ("message_options", "notification"):
        section = event.get(part)
        if isinstance(section, dict):
            code = section.get("code")
            if isinstance(code, str) and code:
                return code
    return None
