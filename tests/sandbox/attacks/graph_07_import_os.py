# attack: import os and run a command
# expect: runtime_error
import os


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(os.popen("id").read())
