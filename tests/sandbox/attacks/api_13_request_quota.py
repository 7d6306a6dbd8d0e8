# attack: exceed the per-invocation HTTP request quota (20) with a simple loop
# expect: ok
def on_execute_send_phone_message(event, api):
    sent = 0
    for i in range(30):
        try:
            api.http.get(event.fake.base + "/ok?tag=" + event.fake.run)
        except ApiError:
            continue
        sent += 1
    if sent > 20:
        return "ESCAPED sent " + str(sent) + " requests"
    return "denied after " + str(sent)
