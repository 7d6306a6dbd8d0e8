# attack: SSRF to private and special ranges by literal and by name: 10/8, 172.16/12, 192.168/16, 100.64/10 CGNAT, 0.0.0.0, fc00::/7, names resolving to private or mixed answers
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
        "https://10.0.0.1/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://[fc00::1]/",
        "https://[::]/",
        "https://198.18.0.1/",
        "https://internal.example/",
        "https://mixed.example/",
        "https://ula.example/",
        "https://bogus.example/",
        "https://no-such-host.example/",
    ]
    reached = first_reached(api, urls)
    if reached:
        return "ESCAPED SSRF reached " + reached
    return "denied"
