# attack: list memory bomb [0] * 10**10
# expect: memory_limit
def on_execute_send_phone_message(event, api):
    return len([0] * (10 ** 10))
