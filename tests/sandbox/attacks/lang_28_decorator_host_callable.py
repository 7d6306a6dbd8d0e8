# attack: decorators that hand a tenant function object to host callables (json.dumps, api.log.info), hoping one serialises or calls into its internals
# expect: runtime_error
import json


@json.dumps
def leaked():
    return "ESCAPED"


def on_execute_send_phone_message(event, api):
    return leaked
