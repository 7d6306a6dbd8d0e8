# attack: CVE-2025-22153 (GHSA-gmj9-h825-chq2): try/except* with an ExceptionGroup whose split() is not a tuple (CPython type confusion); payload deliberately not included
# expect: compile_error
def on_execute_send_phone_message(event, api):
    try:
        raise ExceptionGroup("group", [ValueError("v")])
    except* ValueError as group:
        return "ESCAPED " + str(group)
