# attack: NaN and infinity in json= (the frame encoder would silently send them as null, so a provider gets a body the tenant never wrote)
# expect: ok
def on_execute_send_phone_message(event, api):
    tag = event.fake.run
    for value in (float("nan"), float("inf"), -float("inf")):
        try:
            api.http.post(event.fake.base + "/count?tag=" + tag, json={"score": value})
        except ApiError as exc:
            if "NaN or infinity" not in exc.args[0]:
                raise Exception("unexpected refusal: " + exc.args[0])
            continue
        return "ESCAPED a non-JSON number was sent"
    sent = api.http.get(event.fake.base + "/count?tag=" + tag).text
    if sent != "0":
        return "ESCAPED " + sent + " requests reached the server"
    return "denied"
