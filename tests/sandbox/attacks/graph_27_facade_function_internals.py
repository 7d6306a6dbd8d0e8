# attack: internals of facade functions and api members (func_globals, closure, wrapped, self, code, defaults) looking for the real module or the RPC channel
# expect: ok
import json
import re
import hashlib


def on_execute_send_phone_message(event, api):
    found = []
    for member in (json.dumps, json.loads, re.compile, hashlib.sha256, api.http.get, api.cache.set, api.log.info):
        try:
            found.append(member.func_globals)
        except AttributeError:
            pass
        try:
            found.append(member.closure)
        except AttributeError:
            pass
        try:
            found.append(member.wrapped)
        except AttributeError:
            pass
        try:
            found.append(member.self)
        except AttributeError:
            pass
        try:
            found.append(member.code)
        except AttributeError:
            pass
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
