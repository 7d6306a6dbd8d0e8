# attack: delete a guard hook from the globals so a fallback (or a NameError handler) takes over
# expect: compile_error
def on_execute_send_phone_message(event, api):
    global _getattr_
    del _getattr_
    return event.anything
