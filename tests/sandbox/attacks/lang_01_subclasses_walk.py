# attack: classic escape: ().__class__.__base__.__subclasses__() to find a class whose __init__.__globals__ holds os
# expect: compile_error
def on_execute_send_phone_message(event, api):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return "ESCAPED " + str(cls.__init__.__globals__["system"])
    return "not found"
