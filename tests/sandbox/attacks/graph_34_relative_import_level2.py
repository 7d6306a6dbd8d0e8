# attack: relative import two levels up, into the runtime package
# expect: runtime_error
from ..sandbox import worker


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(worker)
