# attack: module chain json.codecs.sys.modules['os'] : a real json module exposes its own imports
# expect: runtime_error
import json


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(json.codecs.sys.modules["os"].getpid())
