# attack: relative import (level 1) of a sibling of the executing module, e.g. the sandbox's own guards
# expect: runtime_error
from . import guards


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(guards)
