# attack: list(range(10**10)): C-level preallocation
# expect: memory_limit
def on_execute_send_phone_message(event, api):
    return len(list(range(10 ** 10)))
