# attack: an exception whose message is 10 MB
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    raise ValueError('x' * (10 ** 7))
