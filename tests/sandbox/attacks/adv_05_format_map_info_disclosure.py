# attack: AccessControl CVE-2023-41050: information disclosure through "...".format_map over a mapping of host objects
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    template = "{api.http.get.__globals__[__builtins__]}"
    leaked = template.format_map({"api": api})
    return "ESCAPED " + leaked
