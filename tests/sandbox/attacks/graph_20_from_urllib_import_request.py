# attack: from urllib import request: IMPORT_FROM falls back to sys.modules["urllib.request"] when the attribute is missing
# expect: runtime_error
from urllib import request


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + request.urlopen("file:///etc/hostname").read().decode()
