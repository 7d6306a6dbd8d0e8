# attack: repr/str/== of a 100000-deep nested list (recursion in C)
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    nested = []
    for i in range(100000):
        nested = [nested]
    return repr(nested)[:10]
