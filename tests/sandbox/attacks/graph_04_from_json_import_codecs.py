# attack: "from json import codecs": IMPORT_FROM does a C-level getattr that _getattr_ never sees
# expect: runtime_error
from json import codecs


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(codecs.sys.modules["os"].getpid())
