# attack: import builtins (directly, under an alias, and from-import) for the real open/getattr/__import__
# expect: compile_error
import builtins as real
from builtins import open as host_open


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(real.open("/etc/hostname").read()) + host_open("/etc/hostname").read()
