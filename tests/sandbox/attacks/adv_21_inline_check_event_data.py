# attack: reach event data's internals through the inlined subscript and in-place paths (a name holding event data, += on it)
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    options = event["message_options"]
    recipient = options["recipient"]
    items = [options, recipient]
    first = items[0]
    first += {"ESCAPED": True}
    return {"leak": first}
