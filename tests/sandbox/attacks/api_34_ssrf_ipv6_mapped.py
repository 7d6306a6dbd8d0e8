# attack: SSRF to loopback and metadata through IPv6: IPv4-mapped, IPv4-compatible, NAT64, 6to4, ::1, zone ids, names answering mapped addresses
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
        "http://[::ffff:127.0.0.1]:" + port + "/ok",
        "http://[::ffff:7f00:1]:" + port + "/ok",
        "http://[0:0:0:0:0:ffff:127.0.0.1]:" + port + "/ok",
        "http://[::1]:" + port + "/ok",
        "https://[::1]/",
        "https://[::127.0.0.1]/",
        "https://[64:ff9b::7f00:1]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[2002:7f00:1::]/",
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        "https://[fe80::1%25eth0]/",
        "https://[::ffff:a9fe:a9fe]/",
        "https://v6mapped.example/",
        "https://nat64.example/",
    ]
    reached = first_reached(api, urls)
    if reached:
        return "ESCAPED SSRF reached " + reached
    return "denied"
