# attack: run code at import time (top-level loop and call) before the handler is looked up
# expect: compile_error
import json

for name in ["a"]:
    json.dumps(name)

json.loads("1")


def on_execute_send_phone_message(event, api):
    return "ESCAPED"
