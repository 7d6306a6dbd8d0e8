# attack: SSRF through other URL schemes: file:, gopher:, ftp:, dict:, ldap:, data:, ws:, http+unix socket, jar:
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
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "gopher://127.0.0.1:" + port + "/_GET%20/ok",
        "ftp://127.0.0.1:" + port + "/",
        "dict://127.0.0.1:6379/info",
        "ldap://127.0.0.1/",
        "data:text/plain,ESCAPED",
        "ws://127.0.0.1:" + port + "/ok",
        "http+unix://%2Fvar%2Frun%2Fdocker.sock/info",
        "jar:http://127.0.0.1:" + port + "/ok!/",
        "//127.0.0.1:" + port + "/ok",
        "127.0.0.1:" + port + "/ok",
    ]
    reached = first_reached(api, urls)
    if reached:
        return "ESCAPED SSRF reached " + reached
    return "denied"
