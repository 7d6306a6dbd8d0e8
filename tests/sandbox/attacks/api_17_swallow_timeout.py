# attack: swallow whatever the timeout raises with bare except and keep running
# expect: timeout
def on_execute_send_phone_message(event, api):
    while True:
        try:
            while True:
                pass
        except:
            pass
