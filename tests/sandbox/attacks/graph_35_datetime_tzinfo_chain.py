# attack: datetime objects to their tzinfo and on to class-level attributes of timezone
# expect: runtime_error
import datetime


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(datetime.datetime.now(datetime.timezone.utc).tzinfo.utc)
