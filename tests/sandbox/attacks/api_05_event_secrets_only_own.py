# attack: look through event.secrets (and the rest of the event) for any secret that is not this tenant's own
# expect: ok
# cross-tenant: yes
def on_execute_send_phone_message(event, api):
    secrets = event.secrets
    names = list(secrets.keys())
    if names != ["ATTACKER_TOKEN"]:
        return "ESCAPED foreign secret names " + repr(names)
    if "victim" in repr(event):
        return "ESCAPED victim data in the event"
    return "denied"
