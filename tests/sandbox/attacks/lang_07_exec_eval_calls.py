# attack: exec/eval of a string that RestrictedPython never sees
# expect: compile_error
def on_execute_send_phone_message(event, api):
    exec("import os")
    return "ESCAPED " + str(eval("__import__('os').getpid()"))
