# attack: return host objects (the api facade, functions, a generator) instead of JSON, hoping the host serialises or pickles them
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    return {"api": api, "log": api.log.info, "gen": (x for x in [1])}
