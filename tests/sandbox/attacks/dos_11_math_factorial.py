# attack: math.factorial/comb/perm/prod on huge ints (long C computations)
# expect: runtime_error
import math


def on_execute_send_phone_message(event, api):
    return str(math.factorial(10 ** 7))[:10]
