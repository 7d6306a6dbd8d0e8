# attack: monkeypatch shared facades and the api (json.dumps, re.compile, api.http.get, api.log.info) so a later invocation in the same worker is poisoned; run twice
# expect: ok
# repeat: 2
import json
import re


def evil(*args, **kwargs):
    return "ESCAPED poisoned"


def on_execute_send_phone_message(event, api):
    if json.dumps({"a": 1}) != '{"a": 1}' or re.escape("a.b") != "a\\.b":
        return "ESCAPED an earlier invocation's patch is still active"
    patched = []
    try:
        json.dumps = evil
        patched.append("json.dumps")
    except TypeError:
        pass
    try:
        re.compile = evil
        patched.append("re.compile")
    except TypeError:
        pass
    try:
        api.http.get = evil
        patched.append("api.http.get")
    except TypeError:
        pass
    try:
        api.log.info = evil
        patched.append("api.log.info")
    except TypeError:
        pass
    try:
        del json.loads
        patched.append("del json.loads")
    except TypeError:
        pass
    if patched:
        return "ESCAPED patched " + ", ".join(patched)
    return "denied"
