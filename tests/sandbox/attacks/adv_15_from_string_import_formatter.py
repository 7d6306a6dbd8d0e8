# attack: CVE-2026-76825 (import variant): from string import Formatter, then get_value/get_field traversal
# expect: runtime_error
from string import Formatter


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(Formatter().get_value(0, [event], {}))
