# attack: the same walk without underscores at compile time: str.mro() then subclasses() on the result
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    base = str.mro()[-1]
    return "ESCAPED " + str(len(base.subclasses()))
