# attack: the custom-phone-provider api.notification facade: its recorder state, closures, non-string reasons, replacing drop/retry
# expect: ok
# trigger: custom-phone-provider
def on_execute_custom_phone_provider(event, api):
    found = []
    try:
        found.append(api.notification.value)
    except AttributeError:
        pass
    try:
        found.append(api.notification.drop.closure)
    except AttributeError:
        pass
    try:
        api.notification.drop = api.notification.retry
        found.append("drop replaced")
    except TypeError:
        pass
    for reason in (None, 1, {"a": 1}, ["x"]):
        try:
            api.notification.drop(reason)
            found.append(repr(reason))
        except TypeError:
            pass
    if found:
        return "ESCAPED " + repr(found)
    api.notification.retry("provider is down")
