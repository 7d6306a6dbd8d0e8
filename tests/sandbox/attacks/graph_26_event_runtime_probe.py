# attack: everything reachable from the event at runtime: method objects, nested values, writes, item access to private names, equality tricks
# expect: ok
def on_execute_send_phone_message(event, api):
    found = []
    try:
        found.append(event.get.self)
    except AttributeError:
        pass
    try:
        found.append(event.items.func)
    except AttributeError:
        pass
    try:
        event.injected = 1
        found.append("attribute write accepted")
    except TypeError:
        pass
    try:
        event["injected"] = 1
        found.append("item write accepted")
    except TypeError:
        pass
    try:
        event.message_options.code = "000000"
        found.append("nested write accepted")
    except TypeError:
        pass
    for key, value in event.items():
        if not isinstance(key, str):
            found.append(key)
    options = event.message_options
    if options.code != "481516" or event.message_options.code != "481516":
        found.append("event changed")
    try:
        found.append(options.keys.self)
    except AttributeError:
        pass
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
