# attack: busy-wait on time.monotonic for 60 s (a sleep substitute)
# expect: timeout
import time


def on_execute_send_phone_message(event, api):
    started = time.monotonic()
    while time.monotonic() - started < 60:
        pass
    return 'done'
