# attack: build a class without a class statement: type(name, bases, dict) with a lying __eq__ and a str base
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    Sneaky = type("Sneaky", (str,), {"startswith": lambda self, prefix: False})
    return "ESCAPED " + str(Sneaky("x"))
