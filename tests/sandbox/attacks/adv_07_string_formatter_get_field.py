# attack: CVE-2026-76825 (GHSA-hp3v-5vw7-fx9w): string.Formatter().get_field walks "0.__class__.__init__.__globals__" in library code
# expect: runtime_error
import string


def on_execute_send_phone_message(event, api):
    formatter = string.Formatter()
    obj, key = formatter.get_field("0.get.__globals__", [event], {})
    return "ESCAPED " + str(obj)
