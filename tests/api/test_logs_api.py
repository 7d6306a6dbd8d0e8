"""GET /api/v2/logs: each event type the service writes is found by Auth0's query syntax, in
its tenant only, by id, by user and by date, page by page; a bad query is one line naming q."""

from __future__ import annotations

from typing import Any

import orjson

from runtime.logs.events import event_lines
from tests.api.conftest import Api

LOGS = "/api/v2/logs"
SEND = "/api/v2/phone/messages"
TYPES = "/api/v2/guardian/factors/phone/message-types"


def _catch_up(api: Api) -> None:
    """The database copy follows the file: wait for it explicitly (no sleeping)."""
    pipeline = api.client.app.state.services.pipeline  # type: ignore[attr-defined]
    api.client.portal.call(pipeline.stored_log.ingester.catch_up)  # type: ignore[union-attr]


def _send(api: Api, tenant: str, channel: str, to: str) -> dict[str, Any]:
    body = {"to": to, "code": "246810", "channel": channel}
    response = api.client.post(SEND, json=body, headers=api.auth(tenant, "create:phone_messages"))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _voice_sent(api: Api, tenant: str, phone: str) -> None:
    """A gd_send_voice event through the app's log sink (the outbox sends no voice): made from
    a real gd_send_sms event of this test, the way runtime/logs shapes them."""
    report = _send(api, tenant, "sms", phone)
    lines = api.settings.resolved_log_file.read_bytes().splitlines()
    sms = next(
        e for e in map(orjson.loads, lines) if e["details"].get("delivery_id") == report["id"]
    )
    voice = {**sms, "type": "gd_send_voice", "log_id": sms["log_id"][:-2] + "ff"}
    pipeline = api.client.app.state.services.pipeline  # type: ignore[attr-defined]
    written = pipeline.log_sink.write_lines(event_lines([voice], []))
    api.client.portal.call(lambda: written)  # type: ignore[union-attr]


def _types(api: Api, tenant: str, *types: str) -> None:
    headers = api.auth(tenant, "update:guardian_factors")
    response = api.client.put(TYPES, json={"message_types": list(types)}, headers=headers)
    assert response.status_code == 200, response.text


def _search(api: Api, tenant: str, **params: Any) -> Any:
    response = api.client.get(LOGS, params=params, headers=api.auth(tenant, "read:logs"))
    assert response.status_code == 200, response.text
    return response.json()


def test_each_event_type_is_found_in_its_tenant_only(api: Api) -> None:
    a, b = api.tenant_a, api.tenant_b
    _types(api, a, "sms", "voice")
    _types(api, b, "sms", "voice")
    _send(api, a, "sms", "+14155550101")  # gd_send_sms
    _voice_sent(api, a, "+14155550102")  # gd_send_voice
    _types(api, a, "sms")
    _send(api, a, "voice", "+14155550103")  # gd_send_voice_failure
    _types(api, b, "voice")
    _send(api, b, "sms", "+14155550104")  # gd_send_sms_failure
    enroll = api.client.post(
        "/api/v2/phone/enrollments",
        json={"user_id": "auth0|logs-1", "phone_number": "+14155550105", "channel": "sms"},
        headers=api.auth(a, "create:phone_enrollments"),
    )
    assert enroll.status_code == 201, enroll.text  # gd_start_enroll (and its gd_send_sms)
    _catch_up(api)

    expected = {
        (a, "gd_send_sms", "+14155550101"),
        (a, "gd_send_voice", "+14155550102"),
        (a, "gd_send_voice_failure", "+14155550103"),
        (b, "gd_send_sms_failure", "+14155550104"),
        (a, "gd_start_enroll", "+14155550105"),
    }
    for tenant, kind, phone in expected:
        found = _search(api, tenant, q=f'type:{kind} AND user_name:"{phone}"')
        assert [e["type"] for e in found] == [kind], kind
        other = b if tenant == a else a
        assert _search(api, other, q=f'type:{kind} AND user_name:"{phone}"') == []
        one = api.client.get(f"{LOGS}/{found[0]['log_id']}", headers=api.auth(tenant, "read:logs"))
        assert one.status_code == 200
        assert one.json() == found[0]
        hidden = api.client.get(
            f"{LOGS}/{found[0]['log_id']}", headers=api.auth(other, "read:logs")
        )
        assert hidden.status_code == 404

    by_user = _search(api, a, q='user_id:"auth0|logs-1"')
    assert {e["type"] for e in by_user} >= {"gd_start_enroll"}
    either = _search(api, a, q="type:(gd_send_voice OR gd_send_voice_failure)")
    assert {e["type"] for e in either} == {"gd_send_voice", "gd_send_voice_failure"}
    assert _search(api, a, q="date:[2000-01-01 TO 2000-12-31]") == []
    assert len(_search(api, a, q="date:[2000-01-01 TO *] AND type:gd_send*")) >= 3


def test_pages_totals_and_checkpoints(api: Api) -> None:
    tenant = api.tenant_b
    _types(api, tenant, "sms", "voice")
    for n in range(3):
        _send(api, tenant, "sms", f"+1415555020{n}")
    _catch_up(api)
    everything = _search(api, tenant, per_page=100, sort="date:1")
    first, second = (_search(api, tenant, per_page=1, page=p, sort="date:1") for p in (0, 1))
    assert [first[0], second[0]] == everything[:2]
    newest = _search(api, tenant, per_page=1)
    assert newest[0] == everything[-1]
    totals = _search(api, tenant, per_page=2, include_totals="true")
    assert totals["total"] == len(everything)
    assert totals["length"] == 2
    after = _search(api, tenant, **{"from": everything[0]["log_id"], "take": 100})
    assert after == everything[1:]
    # a checkpoint the log no longer has (purged, or mistyped) is said, never the whole log
    # handed over again as if it were new
    gone = api.client.get(
        LOGS, params={"from": "9" * 32, "take": 10}, headers=api.auth(tenant, "read:logs")
    )
    assert gone.status_code == 400, gone.text
    assert gone.json()["message"].startswith("from: no event has this log_id")


def test_bad_queries_and_scopes_are_one_line(api: Api) -> None:
    headers = api.auth(api.tenant_a, "read:logs")
    for q, word in (
        ("password:x", "unknown field"),
        ("type:(", "not a log query"),
        ("type:x AND", "e.g. type:gd_send_sms"),
        ("x", "no field"),
    ):
        response = api.client.get(LOGS, params={"q": q}, headers=headers)
        assert response.status_code == 400, response.text
        message = response.json()["message"]
        assert message.startswith("q: ")
        assert word in message
        assert "\n" not in message
        assert "Syntax error in input" not in message  # the parser's decoration, not ours
    too_deep = api.client.get(LOGS, params={"page": 20, "per_page": 100}, headers=headers)
    assert too_deep.status_code == 400
    assert "page" in too_deep.json()["message"]
    refused = api.client.get(LOGS, headers=api.auth(api.tenant_a, "read:log_streams"))
    assert refused.status_code == 403
