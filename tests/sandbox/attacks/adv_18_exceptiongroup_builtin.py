# attack: CVE-2025-22153 without except*: build a BaseExceptionGroup/ExceptionGroup directly and drive split() by hand
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    group = BaseExceptionGroup("group", [ValueError("v")])
    return "ESCAPED " + str(group.split(ValueError))
