# attack: module chain datetime.sys (public on 3.11) to sys.modules
# expect: runtime_error
import datetime


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(datetime.sys.modules["os"].getpid())
