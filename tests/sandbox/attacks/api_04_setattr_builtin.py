# attack: monkeypatch a facade through setattr() instead of attribute syntax
# expect: runtime_error
import json


def on_execute_send_phone_message(event, api):
    setattr(json, "dumps", lambda *a: "ESCAPED")
    return json.dumps(1)
