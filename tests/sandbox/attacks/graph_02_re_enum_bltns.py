# attack: module chain re.enum.bltns.open: the real re module reaches builtins through enum
# expect: runtime_error
import re


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(re.enum.bltns.open("/etc/hostname").read())
