# attack: json.loads object_hook / json.dumps default or cls: library code calls tenant or host callables
# expect: runtime_error
import json


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(json.loads("{}", object_hook=lambda d: "ESCAPED"))
