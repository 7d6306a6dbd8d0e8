# attack: str.center/ljust/zfill with a 10**10 width
# expect: memory_limit
def on_execute_send_phone_message(event, api):
    return len('x'.center(10 ** 10))
