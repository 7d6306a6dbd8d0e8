# attack: methods the egress should refuse or normalise: CONNECT, TRACE, lowercase tricks, methods with spaces, overlong methods
# expect: ok
def on_execute_send_phone_message(event, api):
    accepted = []
    for method in ("CONNECT", "TRACE", "PROPFIND", "GET /admin", "G\tET", "GET\x00", "X" * 100, "get"):
        try:
            api.http.request(method, event.fake.base + "/ok")
            if method != "get":
                accepted.append(method)
        except (ApiError, ValueError):
            pass
    if accepted:
        return "ESCAPED methods accepted " + repr(accepted)
    return "denied"
