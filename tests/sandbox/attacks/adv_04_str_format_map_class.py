# attack: CVE-2023-41039 (escaped on RP 6.0): str.format_map taken from the str class, not an instance
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    fmt = str.format_map
    leaked = fmt("{x.get.__self__._data}", {"x": event})
    return "ESCAPED " + leaked
