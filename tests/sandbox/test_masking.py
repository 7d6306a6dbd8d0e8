"""Nothing secret or hostile leaves a worker unmasked: secrets and the code are masked, control
characters escaped, in the report, events.jsonl, the recording, operator logs and test-action.

Everything runs through the real pipeline, sandbox and a stub HTTP server on 127.0.0.1; a host
name that carries a secret is resolved by an injected resolver to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import plugins.recorder as recorder
from runtime import PhoneMessageRequest
from runtime.cli import app
from runtime.masking import MASK, MAX_MATCHES, TRIE_FORM, Masker, escape_controls
from runtime.sandbox.host.egress import EgressPolicy
from runtime.sandbox.host.runner import SandboxRunner
from runtime.templates import spell_code
from tests.conftest import PipelineFactory, read_log
from tests.recordings.make_recordings import recorder_plugins
from tests.support.events import EVENTS_DIR
from tests.support.stub_server import StubServer

SECRET = "Sk7Qx9Lm2Vb4"  # mixed case: a host name arrives lower-cased
CODE = "730419"
WORDS = "seven three zero four one nine"
SPELLINGS = {
    "dots": ".".join(CODE),
    "dashes": "-".join(CODE),
    "spaces": " ".join(CODE),
    "voice": spell_code(CODE),
    "words": WORDS,
}


def leaks(text: str) -> list[str]:
    """The secret or the code, in any of the spellings an action might use, found in text."""
    lowered = text.lower()
    found = [s for s in (SECRET, SECRET.lower()) if s.lower() in lowered]
    found += [name for name, form in {"plain": CODE, **SPELLINGS}.items() if form in lowered]
    return found


@pytest.fixture
def fake() -> Iterator[StubServer]:
    with StubServer() as server:
        server.respond(200, {"id": "m-1"})
        yield server


# -- the mask itself ---------------------------------------------------------------------------


def test_one_mask_covers_the_code_in_every_spelling_and_the_secret_in_every_case() -> None:
    masker = Masker([SECRET, "GB"], CODE)
    for form in (CODE, *SPELLINGS.values(), WORDS.upper(), "73 04 19"):
        assert masker.text(f"<{form}>") == f"<{MASK}>", form
    assert masker.text(f"id{CODE}x") == f"id{MASK}x"
    assert masker.text(f"https://{SECRET.lower()}.example/{SECRET}%21") == (
        f"https://{MASK}.example/{MASK}%21"
    )
    assert masker.text("GB and 1730419 and +447911730419") == "GB and 1730419 and +447911730419"


def test_a_printed_multi_line_secret_is_masked_line_by_line() -> None:
    """``print`` hands the log one line at a time: each line of a PEM key is masked alone."""
    body = ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "Vb4Sk7Qx9Lm2Vb4Sk7Qx9Lm2"]
    pem = "\n".join(["-----BEGIN PRIVATE KEY-----", *body, "-----END PRIVATE KEY-----", ""])
    masker = Masker([pem], CODE)
    printed = ("key: " + pem).split("\n")
    assert [masker.cut_line(line) for line in printed] == [
        f"key: {MASK}",
        MASK,
        MASK,
        MASK,
        "",
    ]
    assert masker.text("-----") == "-----"  # short lines of a secret are too common to mask


def test_a_secrets_python_repr_and_the_code_as_a_number_are_masked() -> None:
    quoted = "Xk9$m{2Q'z\"w"  # both quotes: repr escapes one of them
    masker = Masker([quoted, "h\u00e9llo-w\u00f6rld"], CODE)
    assert masker.text(f"KeyError: {[quoted]!r}") == f"KeyError: ['{MASK}']"
    assert masker.text(ascii("h\u00e9llo-w\u00f6rld")) == f"'{MASK}'"
    echoed = {"otp": int(CODE), "price": 0.5, "again": float(CODE), "ok": True, "n": 1730419}
    masked = {"otp": MASK, "price": 0.5, "again": MASK, "ok": True, "n": 1730419}
    assert masker.data(echoed) == masked


def test_the_worker_masks_its_result_and_logs_and_the_supervisor_only_escapes_them() -> None:
    """Masking a large result costs the tenant's worker, never the supervisor's event loop:
    the supervisor takes the worker's result as it is (no walk, no copy) and escapes the
    logs' control characters again."""
    from runtime.sandbox.guest.worker_loop import _masked
    from runtime.sandbox.host.runner import masked_result
    from runtime.sandbox.shared.contract import InvocationResult

    raw = InvocationResult(
        outcome="ok", result={"otp": CODE, "keys": [SECRET] * 3}, logs=[f"key={SECRET}\x1b[2J"]
    )
    worker = _masked(raw, [SECRET], CODE)
    assert worker.result == {"otp": MASK, "keys": [MASK] * 3}
    assert worker.logs == [f"key={MASK}\\x1b[2J"]
    failed = InvocationResult(
        outcome="runtime_error",
        error=f"KeyError: {SECRET}",
        traceback=[f"line 3, in handler: code {CODE}", "x" * 40 + SECRET[:6]],
    )
    masked_by_worker = _masked(failed, [SECRET], CODE)
    assert masked_by_worker.error == f"KeyError: {MASK}"
    assert masked_by_worker.traceback == [f"line 3, in handler: code {MASK}", "x" * 40 + MASK]
    shown_failure = masked_result(failed, Masker([SECRET], CODE))  # what the worker sent
    assert shown_failure.error == failed.error  # the supervisor does not mask it again
    large = InvocationResult(outcome="ok", result=[f"id-{n}" for n in range(20_000)], logs=["\x07"])
    shown = masked_result(large, Masker([SECRET], CODE))
    assert shown.result is large.result
    assert shown.logs == ["\\x07"]


def test_a_set_of_secrets_is_compiled_once_and_a_multi_line_one_is_bounded() -> None:
    """A tenant's secrets are the same from one invocation to the next: their forms are
    compiled once per process, not per invocation (large ones took seconds each time), and
    the code, which changes every time, is kept out of them. A multi-line secret adds at most
    MAX_SECRET_LINES line forms."""
    from runtime.sandbox.shared.masker import (
        MAX_SECRET_LINES,
        compiled_forms,
        forms_compiled,
        secrets_key,
    )

    unique = uuid.uuid4().hex  # a set no other test compiled
    secrets = [f"{unique}-secret", "\n".join(f"line-{n:05d}" for n in range(500))]
    key = secrets_key(secrets)
    assert not forms_compiled(key)
    first, second = Masker(secrets, "111111"), Masker(secrets, "222222")
    assert first.text(f"{unique}-secret") == MASK
    assert forms_compiled(key)
    assert second._secret_forms() is first._secret_forms() is compiled_forms(key)
    assert second.text("222222 line-00000 line-00499") == f"{MASK} {MASK} line-00499"
    assert MAX_SECRET_LINES == 64


def test_long_overlapping_and_repeated_secrets_are_masked_whole() -> None:
    key = "-----BEGIN PRIVATE KEY-----" + "MIIEv" * 200  # longer than TRIE_FORM: found by find
    masker = Masker([key, "tok_abcd", "abcd_xyz"], CODE)
    assert len(key) > TRIE_FORM
    assert masker.text(f"key={key.upper()};") == f"key={MASK};"
    assert masker.text("tok_abcd_xyz!") == f"{MASK}!"  # two secrets overlapping: one mask
    assert masker.text("tok_abcdtok_abcd") == MASK + MASK  # side by side: one each
    assert masker.text("İ tok_ABCD") == f"İ {MASK}"  # İ lower-cases to two characters
    assert masker.text("tok_abcd " * (MAX_MATCHES + 1)) == MASK  # a text made of secrets


@pytest.mark.parametrize(
    ("secret", "text"),
    [
        ("PASS_ΚΩΔΙΚΟΣ", "user Ayşe from İzmir, secret PASS_ΚΩΔΙΚΟΣ"),  # final sigma, İ nearby
        ("ΚΩΔΙΚΟΣ", "key=ΚΩΔΙΚΟΣx"),  # noqa: RUF001
        ("admin-secret", "ADMİN-SECRET"),  # dotted capital I
        ("admin-secret", "admın-secret"),  # noqa: RUF001 - dotless i
        ("password", "paſſword"),  # noqa: RUF001 - long s
        ("kelvin-key", "\u212aELVIN-KEY"),  # the Kelvin sign
    ],
)
def test_letter_case_is_matched_as_the_regex_engine_matches_it(secret: str, text: str) -> None:
    """Every case variant re.IGNORECASE takes for the secret is masked, whatever the text's
    other characters (str.lower changes the final sigma by context, and İ into two)."""
    masked = Masker([secret]).text(text)
    assert MASK in masked
    assert re.search(re.escape(secret), masked, re.IGNORECASE) is None


def test_a_code_beside_a_secret_and_overlapping_secrets_are_masked_whole() -> None:
    assert Masker(["8B8  %"], "902838").text("902838B8  %") == MASK  # no digit of it shown
    long_secret = "ab" * 33  # longer than TRIE_FORM: found by str.find, overlaps too
    assert Masker([long_secret, "zzab"]).text("zz" + "ab" * 34) == MASK


def test_spellings_that_differ_in_letter_case_are_one_form_and_cost_one_path() -> None:
    """Tenants choose their secrets and the text its action returns: 30 secrets that differ
    only in letter case once made the regex try 180 alternatives of 64 characters at every
    position of a 256 KiB result (10 s of the event loop). They are one form now, in a regex
    shaped as a trie (one path per position), so the cost is linear in the text."""
    base = "a" * 60 + "/ é0"
    variants = [
        "".join(ch.upper() if (i >> n) & 1 else ch for n, ch in enumerate(base)) for i in range(30)
    ]
    assert len(set(variants)) == 30
    masker, single = Masker(variants, CODE), Masker([base], CODE)
    forms, single_forms = masker._secret_forms(), single._secret_forms()
    assert forms is not None
    assert single_forms is not None
    short, single_short = forms.short, single_forms.short
    assert short is not None
    assert single_short is not None
    assert short.pattern == single_short.pattern
    started = time.perf_counter()
    assert masker.text("a" * 262_000) == "a" * 262_000
    assert time.perf_counter() - started < 2  # about 0.01 s; the alternation took 10 s


def test_a_secret_or_code_cut_at_a_fields_end_is_masked_too() -> None:
    """A log line or an error cut at its cap keeps only the start of a secret or the code:
    :meth:`Masker.cut_line` masks that start too (two characters or more), also before the
    ``...`` that marks a cut error, and leaves other endings alone."""
    masker = Masker([SECRET, "p" * 100 + "LONG"], code=CODE)
    assert masker.cut_line("." * 40 + SECRET[:7]) == "." * 40 + MASK
    assert masker.cut_line("." * 40 + SECRET[:7].upper()) == "." * 40 + MASK  # any case
    assert masker.cut_line("boom: " + CODE[:5] + "...") == "boom: " + MASK + "..."
    assert masker.cut_line("x" + "p" * 90) == "x" + MASK  # a long secret's start, past 64
    assert masker.cut_line("took 7") == "took 7"  # one character: not masked
    assert masker.cut_line("took 73 ms") == "took 73 ms"  # not at the end
    assert masker.cut_line(f"{SECRET} then {CODE}") == f"{MASK} then {MASK}"


def test_masking_cut_fields_stays_linear_for_pathological_secrets() -> None:
    """Secrets chosen to make the tail check quadratic (one long periodic secret, and many
    sharing a start) cost milliseconds per field, not seconds."""
    periodic = "ab" * 2000 + "c"
    masker = Masker([periodic, *("ab" * 30 + f"{n:04d}" for n in range(29))], code=CODE)
    field = "x" + "ab" * 1000 + "d"
    started = time.perf_counter()
    for _ in range(200):  # a result's log lines
        masker.cut_line(field)
    assert time.perf_counter() - started < 2.0


def _wide_lines(secrets: int, lines: int) -> list[str]:
    """Multi-line secrets whose lines share 62 characters and differ in one wide one: every
    position of a text of ``a`` walks 62 characters, then meets as many branches as lines."""
    wide = iter(range(0x4E00, 0x9FFF))
    return [
        "\n".join("a" * 62 + chr(next(wide)) + "aa" for _ in range(lines)) for _ in range(secrets)
    ]


def test_the_supervisor_masks_a_pathological_set_of_secrets_whole_and_fast() -> None:
    """30 secrets of 62 lines that share their starts (within the store's limits) made each
    1 KiB field cost 60 ms on the supervisor's loop, 42 fields an invocation. Such a set is
    masked whole there (the tenant's own texts, at no cost); the worker, on the tenant's CPU,
    still masks it exactly; real secrets (30 PEM keys line by line) stay far below the bound."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from runtime.sandbox.shared.masker import MAX_WALK, _SecretForms, secrets_key

    pathological = _wide_lines(30, 62)
    supervisor, worker = Masker(pathological, CODE), Masker(pathological, CODE, exact=True)
    field = "\u9fa0" + "a" * 1019
    assert supervisor._secret_forms() is not None  # compiled beforehand (on a thread)
    started = time.perf_counter()
    for _ in range(64):
        assert supervisor.cut_line(field) == MASK
    assert time.perf_counter() - started < 1  # about 0.1 ms; it took 3.8 s
    line = pathological[0].splitlines()[1]
    assert worker.text(f"x {line} y") == f"x {MASK} y"
    assert worker.text(field) == field

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    real = [pem] * 1 + [f"sk_live_{n:024d}" for n in range(29)]
    assert not _SecretForms(secrets_key(real)).costly
    assert Masker(real, CODE).text(f"key: {pem.splitlines()[3]}") == f"key: {MASK}"
    assert MAX_WALK >= 256


def test_wide_branches_cost_one_class_test_where_no_secret_goes_on() -> None:
    """Just below the bound, a text that meets 190 branches at every position costs one class
    test there, not 190 comparisons."""
    secrets = _wide_lines(30, 6) + _wide_lines(1, 10)
    masker = Masker(secrets, CODE)
    forms = masker._secret_forms()
    assert forms is not None
    assert not forms.costly
    field = "\u9fa0" + "a" * 1018 + "!"  # (an end of a's could start a secret: masked)
    started = time.perf_counter()
    for _ in range(64):
        assert masker.cut_line(field) == field
    assert time.perf_counter() - started < 1  # about 10 ms; 190 comparisons each took 0.1 s


def test_a_code_with_leading_zeros_echoed_as_a_number_is_masked() -> None:
    """A JSON number drops the leading zeros: ``012345`` comes back as ``12345``."""
    masker = Masker(["00987654"], "012345")
    echoed = {"otp": 12345, "f": 12345.0, "pin": 987654, "n": 1234, "m": 123450}
    assert masker.data(echoed) == {"otp": MASK, "f": MASK, "pin": MASK, "n": 1234, "m": 123450}
    assert Masker([], "000000").data({"zero": 0}) == {"zero": 0}  # no digit left to spell
    assert Masker([], "000001").data({"parts": 1}) == {"parts": 1}  # too short to be the code


def test_a_secret_in_a_host_name_is_masked_in_its_idna_spelling() -> None:
    """A host name holding a non-ASCII secret goes out, and into errors, as IDNA."""
    masker = Masker(["bücherwürm"])
    assert masker.text("cannot resolve xn--bcherwrm-65af.example.com") == (
        f"cannot resolve {MASK}.example.com"
    )


def test_a_secret_cut_at_a_fields_end_is_masked_even_when_it_holds_another() -> None:
    """``SID:TOKEN`` holds the secret ``SID``: masked first, the inner one hid the outer one's
    start, and 23 characters of the token showed."""
    sid, token = "AC0123456789abcdef", "f0e1d2c3b4a5968778695a4b3c2d1e0f"
    masker = Masker([sid, f"{sid}:{token}"], CODE)
    assert masker.cut_line(f"auth {sid}:{token[:23]}...") == f"auth {MASK}..."
    assert masker.cut_line(f"sid {sid} ok") == f"sid {MASK} ok"


def test_the_supervisors_masker_keeps_its_compiled_set_and_a_budget() -> None:
    """The set a thread compiled is the masker's own: other tenants' sets evicting it from
    the kept ones cannot make the event loop compile it again. Past its budget of work, an
    invocation's texts are masked whole."""
    from runtime.sandbox.shared.masker import (
        SECRET_SETS,
        _SecretForms,
        compiled_forms,
        forms_compiled,
        secrets_key,
    )

    secrets = [f"{uuid.uuid4().hex}-kept"]
    key = secrets_key(secrets)
    forms = compiled_forms(key)
    for _ in range(SECRET_SETS + 1):  # other tenants' sets
        compiled_forms(secrets_key([f"{uuid.uuid4().hex}-other"]))
    assert not forms_compiled(key)
    masker = Masker(secrets, CODE, forms=forms, budget=100_000)
    assert masker.text(f"x {secrets[0]} y") == f"x {MASK} y"
    assert masker._secret_forms() is forms
    assert not forms_compiled(key)  # not compiled again
    assert isinstance(forms, _SecretForms)
    assert not masker.budget_spent
    assert masker.text("y" * 5_000) == MASK  # the budget is spent: the safe side
    assert masker.budget_spent  # (the runner then says so, with the tenant's id)


def test_host_names_are_masked_as_the_http_client_spells_them() -> None:
    """httpx writes a host as IDNA 2008 (ß and ς kept), str.lower turns İ into i and a
    combining dot: every spelling a secret in a host name takes is masked."""
    import httpx

    for secret in ("paßwort-1234", "secret-valueς", "İstanbul-2024", "bücherwürm"):
        url = httpx.URL(f"https://{secret}.example.com/x")
        masker = Masker([secret])
        assert masker.text(url.raw_host.decode()) == f"{MASK}.example.com", secret
        assert masker.text(f"https://{url.host}/x") == f"https://{MASK}.example.com/x", secret


def test_operator_log_lines_keep_the_runtimes_own_words_and_the_tenants_id() -> None:
    """A tenant whose secrets spell its own id, or are masked whole, cannot hide from the
    operator which tenant an egress line is about: the format and RuntimeText arguments are
    the runtime's; the other arguments are masked one by one."""
    from runtime.masking import MaskingLogFilter, RuntimeText, masking

    def shown(masker: Masker, *args: object) -> str:
        record = logging.LogRecord(
            "runtime.sandbox.x", logging.INFO, "f", 1, "%s %s %s", args, None
        )
        with masking(masker):
            MaskingLogFilter().filter(record)
        return record.getMessage()

    tenant = "acme-tenant"
    masker = Masker([tenant, SECRET], CODE)
    line = shown(masker, RuntimeText(tenant), f"https://{tenant}.example/{SECRET}", int(CODE))
    assert line == f"{tenant} https://{MASK}.example/{MASK} {MASK}"
    whole = Masker(_wide_lines(30, 62), CODE)  # a set masked whole
    assert shown(whole, RuntimeText(tenant), "http://169.254.169.254/", 7) == f"{tenant} {MASK} 7"


async def test_secrets_with_letters_outside_ascii_run_and_are_masked_in_a_real_worker() -> None:
    """A password with an umlaut once made every invocation of its action fail: the worker's
    masker spelled it as IDNA with a codec the worker never imported. A secret longer than
    the store keeps is refused before anything compiles (its spellings cost time)."""
    source = """
def on_execute_send_phone_message(event, api):
    print("user", event.secrets.USER, "key", event.secrets.KEY)
    return {"echo": event.secrets.KEY}
"""
    secrets = {"USER": "José García", "KEY": "Pässwort-2024-ß"}
    async with SandboxRunner(max_workers=1) as runner:
        result = await runner.run(
            tenant="acme",
            name="umlaut",
            source=source,
            trigger="send-phone-message",
            event=json.loads((EVENTS_DIR / "spm_sms_verify_us.json").read_text()),
            secrets=secrets,
        )
        assert result.outcome == "ok", result.error
        assert result.result == {"echo": MASK}
        assert result.logs == [f"user {MASK} key {MASK}"]
        with pytest.raises(ValueError, match="the limit is 4096"):
            await runner.run(
                tenant="acme",
                name="umlaut",
                source=source,
                trigger="send-phone-message",
                event={},
                secrets={"KEY": "é" * 4097},
            )


def test_control_characters_become_visible_escapes() -> None:
    hostile = "a\x1b[2J\x1b]0;owned\x07\nb\r\t\x7f\x9b\u202eZ"
    assert escape_controls(hostile) == "a\\x1b[2J\\x1b]0;owned\\x07\\nb\\r\\t\\x7f\\x9b\\u202eZ"
    assert escape_controls("line one\nline two\r", keep_newlines=True) == ("line one\nline two\\r")
    assert escape_controls("plain café ✓") == "plain café ✓"


# -- the pipeline: report, events.jsonl, recording, operator log -------------------------------

ATTACK = """
def on_execute_send_phone_message(event, api):
    secret = event.secrets.SMS_KEY
    code = event.message_options.code
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    forms = {
        "dots": ".".join(code), "dashes": "-".join(code), "spaces": " ".join(code),
        "voice": ". ".join(code), "words": " ".join([words[int(d)] for d in code]),
    }
    joined = forms[event.secrets.FORM]
    api.http.get(event.secrets.SMS_URL + "/" + secret + "/" + joined.replace(" ", "+"))
    print("leaking", secret, joined, "\\x1b[2J\\x1b]0;owned\\x07")
    api.log.info("log " + secret + " " + joined + "\\nresult: {'forged': True}")
    return {"message_id": "id-" + secret + "-" + joined, "echo": [secret, joined, code]}
"""


def attack_pipeline(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer, form: str, source: str
) -> Any:
    script = tmp_path / "action.py"
    script.write_text(source)
    return make_pipeline(
        {
            "acme": {
                "provider": "phone-message-hook",
                "provider_settings": {"script": str(script)},
                "credentials_env": {"SMS_URL": "URL", "SMS_KEY": "KEY", "FORM": "FORM"},
                "fallback": "never",
                "record": True,
                "record_keep": ["FORM"],
            }
        },
        plugins=recorder_plugins(),
        environ={"URL": f"{fake.url}/send", "KEY": SECRET, "FORM": form},
        sandbox_allow_http_hosts=[fake.url.removeprefix("http://")],
    )


@pytest.mark.parametrize("form", sorted(SPELLINGS))
async def test_the_message_id_attack_leaves_no_secret_or_code_anywhere(
    make_pipeline: PipelineFactory,
    tmp_path: Path,
    fake: StubServer,
    caplog: pytest.LogCaptureFixture,
    form: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline = attack_pipeline(make_pipeline, tmp_path, fake, form, ATTACK)
    request = PhoneMessageRequest.create(tenant="acme", recipient="+447911123456", code=CODE)
    report = await pipeline.deliver(request)
    assert report.status == "delivered", report.model_dump_json()
    [attempt] = report.attempts
    assert attempt.message_id == f"id-{MASK}-{MASK}"
    assert SECRET in fake.requests[0].path  # the action did send it: only the mask is ours
    assert recorder.flush(), "the recorder did not catch up"
    [recording] = (pipeline.settings.resolved_recordings_dir / "acme").iterdir()
    events = read_log(pipeline)
    assert events
    assert all(e["details"].get("message_id") == f"id-{MASK}-{MASK}" for e in events)
    assert leaks(report.model_dump_json()) == []
    assert leaks(pipeline.settings.resolved_log_file.read_text("utf-8")) == []
    assert leaks(recording.read_text("utf-8")) == []
    assert leaks(caplog.text) == []


async def test_action_text_reaches_reports_and_logs_escaped(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    """ESC and LF from print, api.log, an exception and a notification reason."""
    source = """
def on_execute_custom_phone_provider(event, api):
    print("\\x1b[2J\\x1b]0;owned\\x07 printed\\nforged line")
    api.log.info("logged \\x1b[31m red\\nresult: {}")
    api.notification.retry("busy \\x1b[2J\\nretry: forged \\u202e")
"""
    (tmp_path / "action.py").write_text(source)
    pipeline = make_pipeline(
        {
            "acme": {
                "provider": "custom",
                "provider_settings": {"script": str(tmp_path / "action.py")},
                "fallback": "never",
                "record": True,
            }
        },
        plugins=recorder_plugins(),
    )
    request = PhoneMessageRequest.create(tenant="acme", recipient="+447911123456", code=CODE)
    report = await pipeline.deliver(request)
    [attempt] = report.attempts
    assert attempt.error_code == "notification_retry"
    assert attempt.error is not None
    assert "\\x1b[2J\\nretry: forged \\u202e" in attempt.error
    for text in (attempt.error, report.detail or ""):
        assert not any(ch in text for ch in "\x1b\n\r\u202e"), text
    events = read_log(pipeline)
    lines = pipeline.settings.resolved_log_file.read_bytes()
    assert events
    assert lines.count(b"\n") == len(events)  # one JSON object per line
    assert b"\x1b" not in lines
    assert recorder.flush(), "the recorder did not catch up"
    [recording] = (pipeline.settings.resolved_recordings_dir / "acme").iterdir()
    action = json.loads(recording.read_text("utf-8").splitlines()[1])["action"]
    assert action["logs"], action
    for line in action["logs"]:
        assert not any(ch in line for ch in "\x1b\x07\n"), action["logs"]
    assert "[info] logged \\x1b[31m red\\nresult: {}" in action["logs"]


# -- the sandbox's own operator log and HTTP records: secrets in host names --------------------


async def test_a_secret_in_a_host_name_is_masked_in_http_records_and_the_egress_log(
    fake: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    port = int(fake.url.rsplit(":", 1)[1])
    allowed = f"{SECRET.lower()}.example"
    asked: list[str] = []

    async def resolver(host: str, _port: int) -> list[str]:
        """The only name that resolves is the allowed one, to 127.0.0.1; others get nothing,
        so no connection to another address can ever be attempted."""
        asked.append(host)
        return ["127.0.0.1"] if host == allowed else []

    source = """
def on_execute_send_phone_message(event, api):
    key = event.secrets.KEY
    ok = api.http.get("http://" + key + ".example:PORT/ping/" + key)
    try:
        api.http.get("https://" + key + ".invalid/")
    except ApiError as e:
        print("refused:", str(e))
    return {"status": ok["status"]}
""".replace("PORT", str(port))
    caplog.set_level(logging.INFO, logger="runtime.sandbox")
    policy = EgressPolicy(allow_http_hosts=frozenset({f"{allowed}:{port}"}))
    async with SandboxRunner(policy=policy, max_workers=2, resolver=resolver) as runner:
        result = await runner.run(
            tenant="acme",
            name="host",
            source=source,
            trigger="send-phone-message",
            event=json.loads((EVENTS_DIR / "spm_sms_verify_us.json").read_text()),
            secrets={"KEY": SECRET},
        )
    assert result.outcome == "ok", result.error
    assert result.result == {"status": 200}
    assert f"{SECRET.lower()}.example" in asked  # the request really carried the secret
    assert result.http[0].url == f"http://{MASK}.example:{port}/ping/{MASK}"
    assert leaks(result.model_dump_json()) == []
    sandbox_log = [r.getMessage() for r in caplog.records if r.name.startswith("runtime.sandbox")]
    assert any(MASK in line for line in sandbox_log), sandbox_log  # the refusal was logged
    assert leaks(caplog.text) == []
    assert all("\x1b" not in line and "\n" not in line for line in sandbox_log)


# -- test-action output ------------------------------------------------------------------------


def test_test_action_output_cannot_clear_the_screen_or_forge_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONE_ACTIONS_SANDBOX_TIMEOUT", "2")
    script = tmp_path / "hostile.py"
    script.write_text(
        "def on_execute_send_phone_message(event, api):\n"
        "    print('\\x1b[2J\\x1b]0;owned\\x07 ' + event.secrets.KEY)\n"
        "    api.log.info('x\\nresult: {\"forged\": true}')\n"
        "    raise Exception('boom\\x1b[31m\\n  result: {}\\u202e ' + event.message_options.code)\n"
    )
    event = EVENTS_DIR / "spm_sms_verify_us.json"
    code = json.loads(event.read_text())["message_options"]["code"]
    result = CliRunner().invoke(
        app,
        ["test-action", str(script), "--event", str(event), "--secret", f"KEY={SECRET}"],
    )
    assert result.exit_code == 1, result.output
    output = result.output
    assert not any(ch in output for ch in "\x1b\x07\u202e"), repr(output)
    assert "\\x1b[2J\\x1b]0;owned\\x07" in output
    assert not any(line.lstrip().startswith("result:") for line in output.splitlines())
    assert SECRET not in output
    assert code not in output


def test_the_earliest_tail_that_starts_a_form_is_found_by_binary_search() -> None:
    """The tails of a text cut at a field's cap that start a secret are found in the sorted
    starts of its forms (a regex of them took seconds of C to compile for a large set, during
    which the event loop stood still): the same answer as trying every tail."""
    import random

    from runtime.sandbox.shared.masker import TRIE_FORM, _earliest_tail

    chooser = random.Random(7)
    for _ in range(300):
        forms = ["".join(chooser.choices("abc", k=chooser.randint(2, 8))) for _ in range(6)]
        prefixes = sorted({form[:TRIE_FORM] for form in forms})
        window = "".join(chooser.choices("abc", k=chooser.randint(0, 12)))
        expected = next(
            (
                begin
                for begin in range(len(window) - 1)
                if any(form.startswith(window[begin:]) for form in prefixes)
            ),
            None,
        )
        assert _earliest_tail(prefixes, window) == expected, (forms, window)


def test_kept_sets_of_secrets_are_bounded_by_their_size_too() -> None:
    """Large sets (the limits allow 30 secrets of 4,096 characters) take memory once compiled:
    past KEPT_FORM_CHARS characters of forms the oldest are let go, the newest always kept."""
    import secrets as random_text

    from runtime.sandbox.shared import masker as masker_module

    def large_set() -> tuple[str, ...]:
        return masker_module.secrets_key(random_text.token_hex(2048) for _ in range(30))

    first = large_set()
    masker_module.compiled_forms(first)
    kept = [large_set() for _ in range(13)]  # about 123,000 characters of forms each
    for key in kept:
        masker_module.compiled_forms(key)
    held = [k for k in masker_module._COMPILED if k in (first, *kept)]
    chars = sum(masker_module._COMPILED[k].chars for k in masker_module._COMPILED)
    assert chars <= masker_module.KEPT_FORM_CHARS or len(masker_module._COMPILED) == 1
    assert first not in held  # the oldest went first
    assert kept[-1] in held  # the newest stays


def test_one_tenant_cannot_push_the_other_tenants_sets_out() -> None:
    """A tenant keeps at most TENANT_SETS sets within TENANT_FORM_CHARS, its own oldest going
    first, and a larger set is never kept: a new set per request, or one huge set, no longer
    makes every other tenant compile its secrets again on each invocation (red team)."""
    import secrets as random_text

    from runtime.sandbox.shared import masker as masker_module

    def a_set(size: int = 1) -> tuple[str, ...]:
        return masker_module.secrets_key(random_text.token_hex(32) for _ in range(size))

    victim = a_set()
    masker_module.compiled_forms(victim, "victim")
    for _ in range(masker_module.SECRET_SETS * 2):  # a new set on every request
        masker_module.compiled_forms(a_set(), "attacker")
    huge = masker_module.secrets_key("\U0001f600" * 4096 + str(n) for n in range(30))
    assert masker_module.compiled_forms(huge, "attacker").chars > masker_module.TENANT_FORM_CHARS
    assert masker_module.forms_compiled(victim)
    assert not masker_module.forms_compiled(huge)
    owned = [k for k, owner in masker_module._OWNERS.items() if owner == "attacker"]
    assert len(owned) <= masker_module.TENANT_SETS
