# attack: __reduce_ex__ hands back copyreg/constructor callables and the object's state (used in pickle gadget chains)
# expect: compile_error
def on_execute_send_phone_message(event, api):
    parts = event.__reduce_ex__(2)
    return "ESCAPED " + str(parts[0])
