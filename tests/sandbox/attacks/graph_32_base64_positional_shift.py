# attack: shift an argument into a parameter the facade does not list (base64.b64decode(s, altchars))
# expect: runtime_error
import base64


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(base64.b64decode("YWJj", b"-_"))
