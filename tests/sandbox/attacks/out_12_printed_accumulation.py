# attack: print just under the cap in many small pieces, then return printed (the collected text) as the result
# expect: ok
def on_execute_send_phone_message(event, api):
    for i in range(600):
        print('0123456789' * 10)
    return len(printed)
