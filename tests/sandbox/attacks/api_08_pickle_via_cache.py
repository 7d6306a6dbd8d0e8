# attack: store a pickle payload (and other non-JSON values) in the cache hoping the supervisor or a later read unpickles or evaluates it
# expect: ok
def on_execute_send_phone_message(event, api):
    payload = "cposix\nsystem\n(S'id'\ntR."
    api.cache.set("pickled", payload)
    back = api.cache.get("pickled")
    if back is None or back.value != payload or not isinstance(back.value, str):
        return "ESCAPED cache returned " + repr(back)
    refused = 0
    for value in (b"\x80\x04K\x01.", {"__reduce__": "os.system"}, ["cos", "system"]):
        try:
            answer = api.cache.set("pickled-raw", value)
        except (ApiError, TypeError):
            refused += 1
            continue
        if answer.type == "error" and answer.code == "invalid_value":
            refused += 1
    if refused != 3 or api.cache.get("pickled-raw") is not None:
        return "ESCAPED a non-string cache value was accepted"
    return "denied"
