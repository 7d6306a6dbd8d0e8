# attack: unbounded recursion, to overflow the C stack
# expect: runtime_error
def down(n):
    return down(n + 1)


def on_execute_send_phone_message(event, api):
    return down(0)
