# attack: import importlib and import_module anything
# expect: runtime_error
import importlib


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(importlib.import_module("os").getpid())
