# attack: CVE-2026-55830 (GHSA-ffg3-p8fm-mjx2): a positional-only parameter named _write_ shadows the write guard, so json.dumps can be replaced in the worker
# expect: compile_error
import json


def poison(target, replacement, _write_=lambda obj: obj, /):
    target.dumps = replacement


def on_execute_send_phone_message(event, api):
    poison(json, lambda *a, **k: "ESCAPED poisoned json.dumps")
    return json.dumps({"a": 1})
