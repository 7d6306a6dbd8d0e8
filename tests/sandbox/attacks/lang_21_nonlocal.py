# attack: nonlocal rebinding of an enclosing name (used to swap a captured guard or helper)
# expect: compile_error
def on_execute_send_phone_message(event, api):
    target = "safe"

    def swap():
        nonlocal target
        target = "ESCAPED"

    swap()
    return target
