# attack: CVE-2024-47532 (GHSA-5rfv-66g4-jr8h): AttributeError.obj on a failed lookup hands back the real module behind a delegator
# expect: runtime_error
import random


def on_execute_send_phone_message(event, api):
    try:
        random.no_such_member
    except AttributeError as exc:
        real = exc.obj
        return "ESCAPED " + str(real.Random)
    return "no AttributeError at all"
