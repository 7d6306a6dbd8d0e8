# attack: print flood: 100000 lines of 1000 characters
# expect: output_limit
def on_execute_send_phone_message(event, api):
    for i in range(100000):
        print('x' * 1000)
    return 'done'
