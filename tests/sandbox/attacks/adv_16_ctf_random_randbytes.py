# attack: public CTF payload for CVE-2024-47532: random.Random.randbytes(string, 1) makes the real module raise an AttributeError carrying it
# expect: runtime_error
import random


def on_execute_send_phone_message(event, api):
    try:
        random.Random.randbytes(api, 1)
    except AttributeError as exc:
        return "ESCAPED " + str(exc.obj)
    return "no AttributeError at all"
