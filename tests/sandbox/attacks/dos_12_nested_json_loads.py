# attack: deeply nested JSON in json.loads (100000 levels) to overflow the decoder's recursion
# expect: runtime_error
import json


def on_execute_send_phone_message(event, api):
    return json.loads('[' * 100000 + ']' * 100000)
