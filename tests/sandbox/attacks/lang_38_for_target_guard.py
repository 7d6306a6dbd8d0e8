# attack: bind guard names as loop and comprehension targets
# expect: compile_error
def on_execute_send_phone_message(event, api):
    for _print_ in [None]:
        pass
    names = [_getattr_ for _getattr_ in [None]]
    return names
