# attack: urllib.parse.urlencode(quote_via=...) calls an arbitrary callable
# expect: runtime_error
import urllib.parse


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(urllib.parse.urlencode({"a": "b"}, quote_via=lambda *a: "ESCAPED"))
