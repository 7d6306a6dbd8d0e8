# attack: hmac.new with a callable digestmod: library code calls whatever it is given
# expect: runtime_error
import hmac


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(hmac.new(b"k", b"m", digestmod=lambda *a: "ESCAPED").hexdigest())
