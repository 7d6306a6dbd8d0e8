# attack: request quota via redirects: every api.http call follows up to 3 redirect hops, so 20 allowed calls could put 80 requests on the wire
# expect: ok
def on_execute_send_phone_message(event, api):
    url = event.fake.base + "/hop?n=3&tag=" + event.fake.run
    on_the_wire = 0
    calls = 0
    for i in range(20):
        try:
            response = api.http.get(url)
        except ApiError:
            break
        calls += 1
        on_the_wire = int(response.text)
    if on_the_wire > 20:
        return "ESCAPED " + str(on_the_wire) + " requests sent by " + str(calls) + " calls (limit 20 per invocation)"
    return "denied at " + str(on_the_wire)
