# attack: plain infinite loop
# expect: timeout
def on_execute_send_phone_message(event, api):
    while True:
        pass
