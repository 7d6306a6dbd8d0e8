# attack: replace the handler after its def by an import or assignment, so the runtime calls a host function with (event, api)
# expect: compile_error
def on_execute_send_phone_message(event, api):
    return "x"


from json import dumps as on_execute_send_phone_message
