# attack: module chain base64.re.enum.sys
# expect: runtime_error
import base64


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(base64.re.enum.sys.modules["os"].getpid())
