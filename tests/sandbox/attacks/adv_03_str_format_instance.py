# attack: CVE-2023-41039: str.format on an instance traverses attributes ("{0.__class__...}") in C, past _getattr_
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    leaked = "{0.__class__.__mro__[1].__subclasses__}".format(event)
    return "ESCAPED " + leaked
