# attack: CR/LF/NUL in header names and values, in the URL and the method, to split the request or inject headers
# expect: ok
def on_execute_send_phone_message(event, api):
    base = event.fake.base + "/headers"
    attempts = [
        ("GET", base, {"X-A": "v\r\nHost: internal.example"}),
        ("GET", base, {"X-A\r\nHost": "internal.example"}),
        ("GET", base, {"X-A": "v\nX-Injected: 1"}),
        ("GET", base, {"X-A": "v\x00"}),
        ("GET", base, {"X A": "v"}),
        ("GET", base, {"X-A": "v\u2028X-Injected: 1"}),
        ("GET", base + "\r\nX-Injected: 1", None),
        ("GET", base + " HTTP/1.1\r\nHost: x\r\n\r\nGET /", None),
        ("GET\r\nX-Injected: 1", base, None),
    ]
    accepted = []
    for method, url, headers in attempts:
        try:
            api.http.request(method, url, headers=headers)
            accepted.append(repr([method, url, headers]))
        except (ApiError, ValueError):
            pass
    if accepted:
        return "ESCAPED accepted " + "; ".join(accepted)
    echoed = api.http.get(base, headers={"X-Fine": "ok"})
    if echoed.json is None or "x-injected" in echoed.json.keys():
        return "ESCAPED header injected: " + echoed.text
    return "denied"
