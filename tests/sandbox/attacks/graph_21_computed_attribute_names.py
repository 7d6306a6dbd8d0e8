# attack: computed attribute names: getattr/vars/__dict__ substitutes, subscripting objects and facades, event.get of private names, %-format mappings
# expect: ok
import json


def on_execute_send_phone_message(event, api):
    name = "".join(["_", "_class", "__"])
    found = []
    try:
        found.append(getattr(event, name))
    except NameError:
        pass
    try:
        found.append(vars(event))
    except NameError:
        pass
    try:
        found.append(api.http["get"])
    except TypeError:
        pass
    try:
        found.append(json["codecs"])
    except TypeError:
        pass
    try:
        found.append(event[name])
    except KeyError:
        pass
    for private in (name, "_data", "__dict__", "__slots__", "get"):
        value = event.get(private)
        if value is not None and private != "get":
            found.append(value)
    try:
        found.append("%(_data)s" % event)
    except KeyError:
        pass
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
