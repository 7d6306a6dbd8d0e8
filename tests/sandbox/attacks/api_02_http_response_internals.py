# attack: an HTTP response's internals (request, extensions with the network stream, stream, raw, content, cookies), expecting an httpx.Response
# expect: ok
def on_execute_send_phone_message(event, api):
    response = api.http.get(event.fake.base + "/ok")
    if response.status != 200 or response.text != "FAKE-OK":
        return "unexpected answer " + str(response.status)
    found = []
    for name in ("request", "extensions", "stream", "raw", "content", "cookies", "history", "next_request"):
        value = response.get(name)
        if value is not None:
            found.append(name)
    if sorted(response.keys()) != ["headers", "json", "status", "text"]:
        found.append(repr(response.keys()))
    try:
        found.append(response.request)
    except AttributeError:
        pass
    try:
        found.append(response.extensions)
    except AttributeError:
        pass
    try:
        response.headers["x"] = "y"
        found.append("headers writable")
    except TypeError:
        pass
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
