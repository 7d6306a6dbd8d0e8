# attack: echo the action's own secret into everything that comes back and gets logged by the host: api.log, print and the api.notification reason (custom-phone-provider)
# expect: ok
# trigger: custom-phone-provider
def on_execute_custom_phone_provider(event, api):
    token = event.secrets.ATTACKER_TOKEN
    api.log.info("token " + token)
    print("token", token)
    api.notification.drop("provider said no; token " + token)
