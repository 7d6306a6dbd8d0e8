# attack: bind a guard name through "except ... as _write_"
# expect: compile_error
import json


def on_execute_send_phone_message(event, api):
    try:
        raise ValueError("x")
    except ValueError as _write_:
        json.dumps = lambda *a: "ESCAPED"
    return json.dumps(1)
