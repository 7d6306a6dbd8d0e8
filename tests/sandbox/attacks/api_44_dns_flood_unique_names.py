# attack: DNS starvation: every call asks for a new name nobody answers, hoping to tie up the supervisor's lookups for every tenant
# expect: ok
def on_execute_send_phone_message(event, api):
    refused = 0
    for i in range(19):
        try:
            api.http.get("https://flood-" + str(i) + "-" + event.fake.run + ".example/")
        except ApiError as exc:
            if "does not resolve" not in exc.args[0] and "timed out" not in exc.args[0]:
                raise Exception("unexpected refusal: " + exc.args[0])
            refused += 1
            continue
        return "ESCAPED a name nobody answers was reached"
    # The tenant's own next request still works: its failures did not jam its lookups.
    if api.http.get(event.fake.base + "/ok").text != "FAKE-OK":
        raise Exception("the egress stopped serving")
    return "denied " + str(refused)
