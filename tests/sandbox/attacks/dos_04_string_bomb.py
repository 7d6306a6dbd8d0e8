# attack: string memory bomb 'A' * 10**10
# expect: memory_limit
def on_execute_send_phone_message(event, api):
    return 'A' * (10 ** 10)
