# attack: SSRF to loopback spelled as a decimal or octal integer (2130706433, 017700000001, 0177.0.0.1), on the fake's port and on 443/80
# expect: ok
def first_reached(api, urls):
    """The first URL the sandbox fetched, or None if every one was refused."""
    for url in urls:
        try:
            response = api.http.get(url)
        except ApiError:
            continue
        return url + " -> " + str(response.status) + " " + response.text[:40]
    return None


def on_execute_send_phone_message(event, api):
    port = str(event.fake.port)
    urls = [
        "http://2130706433:" + port + "/ok",
        "https://2130706433/",
        "http://017700000001:" + port + "/ok",
        "http://0177.0.0.1:" + port + "/ok",
        "http://0177.0000.0000.0001:" + port + "/ok",
        "https://0177.0.0.1/",
        "http://127.000.000.001:" + port + "/ok",
        "https://127.0.0.1/",
        "http://127.0.0.1/",
        "http://127.0.0.2:" + port + "/ok",
    ]
    reached = first_reached(api, urls)
    if reached:
        return "ESCAPED SSRF reached " + reached
    return "denied"
