# attack: f-string width bomb: a 10**10 wide field
# expect: memory_limit
def on_execute_send_phone_message(event, api):
    width = 10 ** 10
    return len(f"{'x':>{width}}")
