# attack: import gc and walk gc.get_objects() to any live host object
# expect: runtime_error
import gc


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(len(gc.get_objects()))
