# attack: rebind print (and printed) to a host callable or a file, to get output out without the sink
# expect: compile_error
print = api
printed = None


def on_execute_send_phone_message(event, api):
    print("ESCAPED")
    return printed
