# attack: mro() walk from an allowed class to object and its subclasses()
# expect: runtime_error
import datetime


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(datetime.datetime.mro()[-1])
