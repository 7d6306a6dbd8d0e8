# attack: read another tenant's secret by name: event.secrets.VICTIM_TOKEN, item access, an api.secrets facade, and via the cache
# expect: ok
# cross-tenant: yes
def on_execute_send_phone_message(event, api):
    found = []
    try:
        found.append(event.secrets.VICTIM_TOKEN)
    except AttributeError:
        pass
    try:
        found.append(event.secrets["VICTIM_TOKEN"])
    except KeyError:
        pass
    value = event.secrets.get("VICTIM_TOKEN")
    if value is not None:
        found.append(value)
    try:
        found.append(api.secrets.get("VICTIM_TOKEN"))
    except AttributeError:
        pass
    for key in ("VICTIM_TOKEN", "secret:VICTIM_TOKEN", "victim:VICTIM_TOKEN"):
        record = api.cache.get(key)
        if record is not None:
            found.append(record.value)
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
