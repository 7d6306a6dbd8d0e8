# attack: raise SystemExit to end the worker process (or the supervisor) instead of the invocation
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    raise SystemExit(0)
