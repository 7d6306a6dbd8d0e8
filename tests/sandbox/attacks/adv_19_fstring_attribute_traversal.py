# attack: format-string traversal moved into an f-string: attribute chains and a nested format spec inside the braces
# expect: compile_error
def on_execute_send_phone_message(event, api):
    return f"ESCAPED {event.get.__self__._data!r:{event.__class__}}"
