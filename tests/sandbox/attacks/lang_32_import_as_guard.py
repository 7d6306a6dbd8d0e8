# attack: import a module under a guard's name (import json as _getattr_), replacing the hook in module globals
# expect: compile_error
import json as _getattr_
from json import dumps as _write_


def on_execute_send_phone_message(event, api):
    return event.anything
