# attack: walk the api object graph for clients, stores, loggers, settings, the RPC channel or other tenants' handles
# expect: ok
def on_execute_send_phone_message(event, api):
    found = []
    for name in ("client", "store", "settings", "channel", "services", "egress", "secrets", "tenant", "members", "name", "sink", "notification"):
        try:
            if name == "client":
                found.append(api.client)
            elif name == "store":
                found.append(api.store)
            elif name == "settings":
                found.append(api.settings)
            elif name == "channel":
                found.append(api.channel)
            elif name == "services":
                found.append(api.services)
            elif name == "egress":
                found.append(api.egress)
            elif name == "secrets":
                found.append(api.secrets)
            elif name == "tenant":
                found.append(api.tenant)
            elif name == "members":
                found.append(api.members)
            elif name == "name":
                found.append(api.name)
            elif name == "sink":
                found.append(api.log.sink)
            else:
                found.append(api.notification)
        except AttributeError:
            pass
    for facade in (api.http, api.cache, api.log):
        try:
            found.append(facade.client)
        except AttributeError:
            pass
        try:
            found.append(facade.channel)
        except AttributeError:
            pass
    try:
        api.http = None
        found.append("api.http replaced")
    except TypeError:
        pass
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
