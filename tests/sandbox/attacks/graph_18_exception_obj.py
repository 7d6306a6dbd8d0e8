# attack: AttributeError.obj / .name on a facade miss, hoping it is the real module behind the facade
# expect: runtime_error
import json


def on_execute_send_phone_message(event, api):
    try:
        json.codecs
    except AttributeError as exc:
        return "ESCAPED " + str(exc.obj)
    return "no AttributeError"
