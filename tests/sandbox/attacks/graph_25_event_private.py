# attack: the event wrapper's private dict (event._data) and its class
# expect: compile_error
def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(event._data)
