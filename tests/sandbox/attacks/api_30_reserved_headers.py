# attack: routing and framing headers (Host, Transfer-Encoding, Content-Length, Connection, Proxy-Authorization, duplicated names) to smuggle or re-route
# expect: ok
def on_execute_send_phone_message(event, api):
    url = event.fake.base + "/headers"
    accepted = []
    for headers in (
        {"Host": "internal.example"},
        {"host": "169.254.169.254"},
        {"Transfer-Encoding": "chunked"},
        {"Content-Length": "0"},
        {"Connection": "keep-alive, X-Hop"},
        {"Proxy-Authorization": "Basic eA=="},
        {"Proxy-Anything": "x"},
        {"X-A": "1", "x-a": "2"},
        {"Te": "trailers"},
        {"Upgrade": "h2c"},
    ):
        try:
            api.http.get(url, headers=headers)
            accepted.append(repr(headers))
        except ApiError:
            pass
    if accepted:
        return "ESCAPED headers accepted " + "; ".join(accepted)
    return "denied"
