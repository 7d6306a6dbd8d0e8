# attack: api.notification.drop with a 1 MB reason (custom-phone-provider), over and over
# expect: ok
# trigger: custom-phone-provider
def on_execute_custom_phone_provider(event, api):
    for i in range(100):
        api.notification.drop('x' * (10 ** 6))
    return None
