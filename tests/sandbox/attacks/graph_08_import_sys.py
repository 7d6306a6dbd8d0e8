# attack: import sys for sys.modules and the interpreter's state
# expect: runtime_error
import sys


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(sys.modules["os"].getpid())
