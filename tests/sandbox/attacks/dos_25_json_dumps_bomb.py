# attack: json.dumps of a list that serialises to ~1 GB (the facade's 1 MiB cap only checks the finished text)
# expect: memory_limit
import json


def on_execute_send_phone_message(event, api):
    return len(json.dumps(['x' * 1000] * (10 ** 6)))
