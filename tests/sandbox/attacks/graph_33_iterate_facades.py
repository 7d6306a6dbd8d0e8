# attack: iterate, unpack or convert facades to find their members or internals (for, unpacking, list, dict, sorted, map, any)
# expect: ok
import json


def on_execute_send_phone_message(event, api):
    found = []
    try:
        for member in api:
            found.append(member)
    except TypeError:
        pass
    try:
        first, second = api.http
        found.append(first)
    except TypeError:
        pass
    try:
        found.append(list(json))
    except TypeError:
        pass
    try:
        found.append(dict(api.cache))
    except (TypeError, ValueError):
        pass
    try:
        found.append(sorted(api.log))
    except TypeError:
        pass
    try:
        found.append(list(map(str, api)))
    except TypeError:
        pass
    try:
        found.append(any(json))
    except TypeError:
        pass
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
