# attack: module chain urllib.parse.sys (public on 3.11)
# expect: runtime_error
import urllib.parse


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(urllib.parse.sys.modules["os"].getpid())
