# attack: overwrite or delete another tenant's cache entries by name and by guessed namespaces
# expect: ok
# cross-tenant: yes
def on_execute_send_phone_message(event, api):
    for key in ("session", "victim-session", "token", "victim:session", "victim.session", "atk-victim:session"):
        api.cache.set(key, "ESCAPED overwritten by another tenant")
        api.cache.delete(key)
    api.cache.set("session", "attacker value")
    return "denied"
