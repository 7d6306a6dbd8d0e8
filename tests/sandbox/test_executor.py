"""The in-worker executor: outcomes, results, tracebacks, output caps, the ``api`` object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runtime.sandbox.guest.compiler import compile_action
from runtime.sandbox.guest.eventdata import EventData
from runtime.sandbox.guest.executor import invoke_source, run_action
from runtime.sandbox.guest.guards import ApiError
from runtime.sandbox.shared.contract import InvocationResult, SandboxLimits, Trigger
from tests.support.events import load_event

LIMITS = SandboxLimits()
SPM_EVENT = load_event("spm_sms_verify_us")
CPP_EVENT = load_event("cpp_text_verify_au")
HANDLER = {
    "send-phone-message": "on_execute_send_phone_message",
    "custom-phone-provider": "on_execute_custom_phone_provider",
}


class Channel:
    """In-memory ApiChannel: records calls; ``reply`` maps op → value or a callable."""

    def __init__(self, **reply: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.reply = {"http.request": {"status": 200, "headers": {}, "text": "{}", "json": {}}}
        self.reply.update({op.replace("_", "."): value for op, value in reply.items()})

    def call(self, op: str, params: dict[str, Any]) -> Any:
        self.calls.append((op, params))
        value = self.reply.get(op)
        return value(params) if callable(value) else value


def run(
    body: str,
    *,
    prelude: str = "",
    trigger: Trigger = "send-phone-message",
    channel: Channel | None = None,
    limits: SandboxLimits = LIMITS,
    event: dict[str, Any] | None = None,
) -> InvocationResult:
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    source = f"{prelude}def {HANDLER[trigger]}(event, api):\n{lines}"
    if event is None:
        event = SPM_EVENT if trigger == "send-phone-message" else CPP_EVENT
    return invoke_source(
        source, name="demo", trigger=trigger, event=event, channel=channel or Channel(),
        limits=limits,
    )  # fmt: skip


def test_ok_result_is_plain_json() -> None:
    result = run("return {'code': event.message_options.code, 'n': (1, 2), 'e': event.tenant}")
    assert result.outcome == "ok"
    assert result.result == {"code": "481516", "n": [1, 2], "e": {"id": "acme"}}
    assert result.error is None
    assert result.traceback == []
    assert result.duration_ms > 0


def test_returning_nothing_is_ok() -> None:
    assert run("pass").model_dump(include={"outcome", "result"}) == {
        "outcome": "ok",
        "result": None,
    }


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("{1, 2}", "handler returned a set, which is not JSON"),
        ("api", "handler returned a Facade, which is not JSON"),
        ("{'a': {1}}", "handler result is not JSON: a set is not JSON data"),
        ("float('nan')", "Out of range float values"),
        ("{(1, 2): 3}", "keys must be str"),
        ("2 ** 70", "integers beyond 64 bits"),
    ],
)
def test_result_must_be_json_within_limits(expression: str, fragment: str) -> None:
    result = run(f"return {expression}")
    assert result.outcome == "runtime_error"
    assert result.result is None
    assert fragment in (result.error or "")


def test_oversize_result_is_output_limit() -> None:
    result = run("return 'x' * (300 * 1024)")
    assert (result.outcome, result.result) == ("output_limit", None)
    assert "over the limit of 262144 bytes" in (result.error or "")


def test_circular_result_is_refused() -> None:
    result = run("a = []\na.append(a)\nreturn a")
    assert result.outcome == "runtime_error"
    assert "Circular reference" in (result.error or "")


def test_runtime_error_shows_tenant_frames_only() -> None:
    prelude = "import json\n\ndef parse(text):\n    return json.loads(text)\n\n"
    result = run("x = 1\nreturn parse('{oops')", prelude=prelude)
    assert result.outcome == "runtime_error"
    assert (result.error or "").startswith("JSONDecodeError: Expecting property name")
    assert result.traceback == [
        'File "<action:demo>", line 8, in on_execute_send_phone_message',
        "    return parse('{oops')",
        'File "<action:demo>", line 4, in parse',
        "    return json.loads(text)",
    ]


def test_deep_recursion_traceback_is_capped() -> None:
    prelude = "def down(n):\n    return down(n + 1)\n"
    result = run("return down(0)", prelude=prelude)
    assert (result.error or "").startswith("RecursionError")
    assert result.traceback[0].endswith("earlier frames omitted")
    assert len(result.traceback) <= 1 + 2 * 20


def test_error_message_is_truncated() -> None:
    result = run("raise ValueError('x' * 10000)")
    assert result.error is not None
    assert len(result.error) <= 2048
    assert result.error.startswith("ValueError: xxx")


def test_print_goes_to_logs_and_overflow_is_output_limit() -> None:
    assert run("print('a', 1, sep='-')\nprint('b', end='')\nprint('c')").logs == ["a-1", "bc"]
    limits = SandboxLimits(max_output_bytes=100)
    result = run("for i in range(50):\n    print('0123456789')\nreturn 1", limits=limits)
    assert result.outcome == "output_limit"
    assert result.result is None
    assert "100 bytes" in (result.error or "")
    assert result.logs == ["0123456789"] * 9


def test_printed_returns_what_the_function_printed() -> None:
    assert run("print('hi')\nreturn printed").result == "hi\n"


def test_logs_are_capped_in_lines_and_bytes() -> None:
    limits = SandboxLimits(max_log_lines=3, max_log_line_bytes=10)
    result = run("for i in range(6):\n    api.log.info('é' * 20)", limits=limits)
    assert result.outcome == "ok"
    assert result.logs[:3] == ["[info] é"] * 3
    assert result.logs[3] == "... 3 log lines dropped"
    assert all(len(line.encode()) <= 10 for line in result.logs[:3])


def test_log_levels_and_type_checks() -> None:
    result = run("api.log.warning('w')\napi.log.error('e')\napi.log.info(1)")
    assert result.logs == ["[warning] w", "[error] e"]
    assert "message must be str, not int" in (result.error or "")


def test_notification_drop_and_retry_last_call_wins() -> None:
    body = "api.notification.drop('first')\napi.notification.retry('r' * 2000)"
    result = run(body, trigger="custom-phone-provider")
    assert result.outcome == "ok"
    assert result.notification == {"action": "retry", "reason": "r" * 1024}
    assert run("pass", trigger="custom-phone-provider").notification is None


def test_notification_is_refused_for_send_phone_message() -> None:
    result = run("api.notification.drop('no')")
    assert result.outcome == "runtime_error"
    assert result.notification is None
    assert "api has no member 'notification'" in (result.error or "")


def test_event_attribute_and_item_access() -> None:
    body = (
        "m = event.message_options\n"
        "return [m.code, event['message_options']['recipient'], event.get('missing', 'd'),"
        " len(m), 'text' in m, sorted(m)[:2], event.user.identities[0].provider,"
        " event.request.geoip.countryCode, dict(m)['action'], [k for k, v in m.items()][0]]"
    )
    assert run(body).result == [
        "481516",
        "+14155552671",
        "d",
        5,
        True,
        ["action", "code"],
        "auth0",
        "US",
        "second-factor-authentication",
        "action",
    ]


def test_missing_event_field_names_what_exists() -> None:
    result = run("return event.message_options.cod")
    assert "no field 'cod'" in (result.error or "")
    assert "code" in (result.error or "")


def test_secrets_are_readable_from_the_event() -> None:
    body = "return [event.secrets.TWILIO_ACCOUNT_SID, event['secrets']['TWILIO_AUTH_TOKEN']]"
    assert run(body).result == ["ACplaceholder", "placeholder-auth-token"]


def test_event_is_a_deep_copy() -> None:
    event = {"a": {"b": [1]}}
    compiled = compile_action(
        "def on_execute_send_phone_message(event, api):\n    return event.a.b\n",
        name="c", trigger="send-phone-message", limits=LIMITS,
    )  # fmt: skip
    assert run_action(compiled, event, Channel(), LIMITS).result == [1]
    assert run_action(compiled, '{"a": {"b": [2]}}', Channel(), LIMITS).result == [2]
    with pytest.raises(TypeError):
        run_action(compiled, [], Channel(), LIMITS)  # type: ignore[arg-type]


def test_http_calls_reach_the_channel_and_replies_are_read_only() -> None:
    channel = Channel(http_request={"status": 201, "headers": {"x": "1"}, "text": "", "json": [1]})
    body = (
        "to = event.message_options.recipient\n"
        "r = api.http.post('https://sms.example/send', json={'to': to}, timeout=2,"
        " headers={'Authorization': 'Bearer ' + event.secrets.TWILIO_AUTH_TOKEN})\n"
        "g = api.http.get('https://sms.example/s', params={'id': 1})\n"
        "return [r.status, r['headers']['x'], r.json[0], g.status]"
    )
    result = run(body, channel=channel)
    assert result.result == [201, "1", 1, 201]
    (op, params), (_, get_params) = channel.calls
    assert op == "http.request"
    assert params == {
        "method": "POST",
        "url": "https://sms.example/send",
        "headers": {"Authorization": "Bearer placeholder-auth-token"},
        "params": None,
        "json": {"to": "+14155552671"},
        "data": None,
        "timeout": 2.0,
    }
    assert get_params["method"] == "GET"
    assert get_params["params"] == {"id": 1}


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ("api.http.get(1)", "url must be str"),
        ("api.http.request('TRACE', 'https://x')", "method must be one of"),
        ("api.http.get('https://x', headers={'a': 'b\\r\\nc: d'})", "CR, LF or NUL"),
        ("api.http.post('https://x', json={1, 2})", "json must be JSON data"),
        ("api.http.get('https://x', timeout=-1)", "timeout must be a positive"),
        ("api.http.post('https://x', data='x' * 300000)", "request body over the limit"),
        ("api.cache.get(5)", "cache key must be str"),
    ],
)
def test_api_argument_checks(call: str, fragment: str) -> None:
    channel = Channel()
    result = run(call, channel=channel)
    assert result.outcome == "runtime_error"
    assert fragment in (result.error or "")
    assert channel.calls == []


def test_http_quota_is_counted_locally() -> None:
    limits = SandboxLimits(max_http_requests=2)
    body = "for i in range(3):\n    api.http.get('https://x')"
    result = run(body, limits=limits)
    assert result.outcome == "runtime_error"
    assert "at most 2 HTTP requests" in (result.error or "")


def test_cache_operations() -> None:
    store: dict[str, Any] = {}
    channel = Channel(
        cache_get=lambda p: {"value": store[p["key"]]} if p["key"] in store else None,
        cache_set=lambda p: store.__setitem__(p["key"], p["value"]),
        cache_delete=lambda p: store.pop(p["key"], None),
    )
    body = (
        "api.cache.set('k', 'v', ttl=60000)\nhit = api.cache.get('k')\n"
        "api.cache.delete('k')\nreturn [hit.value, api.cache.get('k')]"
    )
    assert run(body, channel=channel).result == ["v", None]
    assert channel.calls[0] == (
        "cache.set",
        {"key": "k", "value": "v", "ttl": 60000, "expires_at": None},
    )


def refuse(params: dict[str, Any]) -> Any:
    raise ApiError("destination not allowed")


def explode(params: dict[str, Any]) -> Any:
    raise OSError("/secret/host/path broke")


@pytest.mark.parametrize(
    ("reply", "message"),
    [(refuse, "destination not allowed"), (explode, "api call http.request failed")],
)
def test_channel_failures_become_fresh_api_errors(reply: Callable[..., Any], message: str) -> None:
    body = (
        "try:\n    api.http.get('https://x')\nexcept ApiError as e:\n    return [e.args[0], e.args]"
    )
    assert run(body, channel=Channel(http_request=reply)).result == [message, [message]]


def test_uncaught_api_error_reports_type_and_message() -> None:
    result = run("api.http.get('https://x')", channel=Channel(http_request=refuse))
    assert result.error == "ApiError: destination not allowed"
    assert result.traceback[0].endswith("in on_execute_send_phone_message")


def test_memory_error_is_memory_limit() -> None:
    def oom(params: dict[str, Any]) -> Any:
        raise MemoryError

    result = run("api.http.get('https://x')", channel=Channel(http_request=oom))
    assert result.outcome == "memory_limit"


def test_base_exception_escaping_is_a_runtime_error() -> None:
    def interrupt(params: dict[str, Any]) -> Any:
        raise KeyboardInterrupt

    result = run("api.http.get('https://x')", channel=Channel(http_request=interrupt))
    assert result.outcome == "runtime_error"
    assert result.error == "KeyboardInterrupt"


def test_compile_errors_become_outcome_compile_error() -> None:
    result = run("x = ().__class__")
    assert result.outcome == "compile_error"
    assert result.compile_errors
    assert result.compile_errors[0].line == 2
    assert "CompileError" in (result.error or "")


def test_module_globals_are_fresh_per_invocation() -> None:
    prelude = "COUNT = [0]\n"
    results = [run("COUNT[0] = COUNT[0] + 1\nreturn COUNT[0]", prelude=prelude) for _ in range(2)]
    assert [r.result for r in results] == [1, 1]


def test_event_data_is_frozen_plain_data() -> None:
    data = EventData.from_event('{"a": {"b": [1, {"c": [2]}]}, "get": 3}')
    assert data.a.b == (1, {"c": (2,)})
    assert data["a"]["b"][1].c == (2,)
    assert data == {"a": {"b": (1, {"c": (2,)})}, "get": 3}
    assert repr(data) == "{'a': {'b': (1, {'c': (2,)})}, 'get': 3}"
    assert data.get("get") == 3
    assert data["get"] == 3
    assert callable(data.get)
    assert data.keys() == ("a", "get")
    assert len(data.items()) == 2
    with pytest.raises(TypeError):
        data.a = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        data["a"] = 1
    with pytest.raises(TypeError):
        EventData.from_event("[1, 2]")


def test_module_level_errors_and_print_flush() -> None:
    result = run("pass", prelude="X = 1 // 0\n")
    assert result.traceback == ['File "<action:demo>", line 1, in <module>', "    X = 1 // 0"]
    assert run("print('x', flush=True)").logs == ["x"]
