# attack: echo the action's own secret into the error message and a traceback line, which the host logs
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    token = event.secrets.ATTACKER_TOKEN
    raise ValueError("token " + token + " " + event.secrets.get("ATTACKER_TOKEN"))
