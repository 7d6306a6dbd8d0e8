# attack: a response whose JSON nests 100000 levels, to crash the supervisor's or the worker's decoder (recursion) and leave the link out of step
# expect: ok
def on_execute_send_phone_message(event, api):
    try:
        response = api.http.get(event.fake.base + "/deep-json")
    except ApiError:
        response = None
    again = api.http.get(event.fake.base + "/ok")
    if again.text != "FAKE-OK":
        return "ESCAPED the RPC link is out of step: " + again.text[:80]
    if response is not None and response.json is not None:
        return "deep JSON decoded"
    return "denied"
