# attack: SSRF to loopback spelled in hex or short forms (0x7f000001, 0x7f.0.0.1, 127.1, 127.0.1), plus localhost names and unicode digits/letters that IDNA could map to them
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
        "http://0x7f000001:" + port + "/ok",
        "http://0x7f.0x0.0x0.0x1:" + port + "/ok",
        "http://0x7f.1:" + port + "/ok",
        "http://127.1:" + port + "/ok",
        "http://127.0.1:" + port + "/ok",
        "https://0x7f000001/",
        "http://localhost:" + port + "/ok",
        "https://localhost/",
        "https://loopback.example/",
        "http://LOCALHOST:" + port + "/ok",
        "http://127.0.0.1.:" + port + "/ok",
        "https://ｌｏｃａｌｈｏｓｔ/",
        "https://①②⑦.0.0.1/",
        "http://１２７.０.０.１:" + port + "/ok",
    ]
    reached = first_reached(api, urls)
    if reached:
        return "ESCAPED SSRF reached " + reached
    return "denied"
