# attack: SSRF through redirects from an allowed host to private, link-local, loopback-on-another-port, other schemes and rebinding names
# expect: ok
import urllib.parse


def on_execute_send_phone_message(event, api):
    base = event.fake.base
    targets = [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/",
        "https://internal.example/",
        "https://metadata.example/",
        "http://127.0.0.1:" + str(event.fake.closed_port) + "/",
        "https://127.0.0.1/",
        "http://[::ffff:127.0.0.1]:" + str(event.fake.port) + "/ok",
        "//169.254.169.254/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        base + "/redirect?to=" + urllib.parse.quote("https://10.0.0.1/", safe=""),
    ]
    reached = []
    for target in targets:
        try:
            response = api.http.get(base + "/redirect?to=" + urllib.parse.quote(target, safe=""))
        except ApiError:
            continue
        reached.append(target + " -> " + str(response.status))
    if reached:
        return "ESCAPED redirect followed to " + "; ".join(reached)
    return "denied"
