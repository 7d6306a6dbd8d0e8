# attack: a tenant function's __globals__ is the sandbox's globals dict, holding the guards and __builtins__
# expect: compile_error
def on_execute_send_phone_message(event, api):
    g = on_execute_send_phone_message.__globals__
    return "ESCAPED " + str(g["__builtins__"])
