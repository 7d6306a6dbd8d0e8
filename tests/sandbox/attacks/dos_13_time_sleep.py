# attack: time.sleep holds a worker without using CPU (RLIMIT_CPU never fires)
# expect: runtime_error
import time


def on_execute_send_phone_message(event, api):
    time.sleep(30)
    return 'slept'
