# attack: flood the supervisor with api.cache.get calls until the deadline
# expect: timeout
def on_execute_send_phone_message(event, api):
    while True:
        api.cache.get('k')
