# attack: hit the recursion limit, catch RecursionError, and do it again forever
# expect: timeout
def down(n):
    return down(n + 1)


def on_execute_send_phone_message(event, api):
    while True:
        try:
            down(0)
        except RecursionError:
            pass
