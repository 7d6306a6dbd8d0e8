# attack: one 10 MB print line
# expect: output_limit
def on_execute_send_phone_message(event, api):
    print('x' * (10 ** 7))
    return 'printed'
