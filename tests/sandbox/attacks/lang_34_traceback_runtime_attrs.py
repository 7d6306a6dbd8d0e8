# attack: exception methods that touch tracebacks at runtime (with_traceback, add_note) and a Python-2 style tb attribute
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    try:
        1 / 0
    except ZeroDivisionError as exc:
        again = exc.with_traceback(None)
        return "ESCAPED " + str(again)
