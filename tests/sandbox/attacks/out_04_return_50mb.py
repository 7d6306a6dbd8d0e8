# attack: a 50 MB return value
# expect: output_limit
def on_execute_send_phone_message(event, api):
    return 'x' * (50 * 1024 * 1024)
