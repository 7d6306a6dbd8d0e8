# attack: reach the real builtins through the __builtins__ name
# expect: compile_error
def on_execute_send_phone_message(event, api):
    opener = __builtins__["open"]
    return "ESCAPED " + opener("/etc/hostname").read()
