# attack: call __import__ directly to get the real os module
# expect: compile_error
def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(__import__("os").getpid())
