# attack: read another tenant's cache by name and by guessing namespaces (victim:session, victim.session, ../victim/session, tenant prefixes)
# expect: ok
# cross-tenant: yes
def on_execute_send_phone_message(event, api):
    guesses = [
        "session", "victim-session", "token",
        "victim:session", "victim.session", "victim_session", "victim:victim-session",
        "atk-victim:session", "tenant:victim:session", "victim::session", ":session",
    ]
    found = []
    for key in guesses:
        record = api.cache.get(key)
        if record is not None:
            found.append(key + "=" + record.value)
    for key in ("../victim/session", "victim/session", "victim session", "*", "victim\x00session"):
        try:
            record = api.cache.get(key)
        except ApiError:
            continue
        if record is not None:
            found.append(key + "=" + record.value)
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
