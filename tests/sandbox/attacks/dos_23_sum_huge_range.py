# attack: sum(range(10**12)): a long loop entirely in C
# expect: timeout
def on_execute_send_phone_message(event, api):
    return sum(range(10 ** 12))
