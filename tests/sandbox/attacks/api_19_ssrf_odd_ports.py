# attack: SSRF to odd ports on an allowed host and on loopback (22, 6379, 8080, 0, 65536, another loopback port)
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
        "https://public.example:22/",
        "https://public.example:6379/",
        "https://public.example:8080/",
        "https://public.example:0/",
        "https://public.example:65536/",
        "https://public.example:443443/",
        "http://127.0.0.1:" + str(event.fake.closed_port) + "/ok",
        "http://127.0.0.1:6379/",
        "http://127.0.0.1:" + port + "0/ok",
    ]
    reached = first_reached(api, urls)
    if reached:
        return "ESCAPED SSRF reached " + reached
    return "denied"
