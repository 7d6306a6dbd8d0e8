# attack: huge sep/end arguments to print (the output is built before it is measured)
# expect: output_limit
def on_execute_send_phone_message(event, api):
    print('a', 'b', sep='x' * (10 ** 7), end='y' * (10 ** 7))
    return 'printed'
