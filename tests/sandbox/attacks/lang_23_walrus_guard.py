# attack: rebind the iteration guard with an assignment expression inside the handler
# expect: compile_error
def on_execute_send_phone_message(event, api):
    if (_getiter_ := lambda obj: ["ESCAPED"]):
        for item in [1]:
            return item
    return "no"
