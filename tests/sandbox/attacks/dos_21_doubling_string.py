# attack: double a string in a loop until memory runs out (in-place +=)
# expect: memory_limit
def on_execute_send_phone_message(event, api):
    s = 'x'
    while True:
        s += s
