# attack: while True inside try/except, restarting whenever anything (an in-process timeout) is raised
# expect: timeout
def on_execute_send_phone_message(event, api):
    while True:
        try:
            while True:
                pass
        except Exception:
            pass
