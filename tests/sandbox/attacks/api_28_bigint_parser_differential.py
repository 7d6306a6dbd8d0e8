# attack: parser differential on the RPC link: a 400-digit int (legal JSON, legal for api.cache.set's ttl) that the worker encodes but the supervisor's decoder cannot read
# expect: ok
def on_execute_send_phone_message(event, api):
    try:
        api.cache.set("ttl-probe", "v", 10 ** 400)
    except (ApiError, TypeError, ValueError):
        return "refused"
    return "accepted"
