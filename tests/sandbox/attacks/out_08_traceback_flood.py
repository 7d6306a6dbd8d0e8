# attack: a traceback of ~1000 tenant frames with long source lines
# expect: runtime_error
def down(n, pad):
    return down(n + 1, pad) if n < 100000 else pad


def on_execute_send_phone_message(event, api):
    return down(0, 'x' * 1000)
