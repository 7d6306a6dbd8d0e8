# attack: import ctypes for raw memory access
# expect: runtime_error
import ctypes


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(ctypes.CDLL(None).getpid())
