# attack: cache keys with path traversal, separators, wildcards, control characters, unicode look-alikes and over-long names, hoping one names a record outside the tenant's namespace
# expect: ok
def on_execute_send_phone_message(event, api):
    odd = ("../x", "a/b", "a b", "*", "?", "a\x00b", "a\nb", "ａ", "key\u202e", "$(id)", "{x}", "victim:session")
    for n, key in enumerate(odd):  # any key of up to 64 bytes is legal (Auth0): each is its own record
        api.cache.set(key, "v" + str(n))
    for n, key in enumerate(odd):
        record = api.cache.get(key)
        if record is None or record.value != "v" + str(n):
            return "ESCAPED cache key " + repr(key) + " read " + repr(record)
    if api.cache.get("x") is not None or api.cache.get("session") is not None:
        return "ESCAPED a traversal key wrote another key"
    accepted = []
    for key in ("", "k" * 65, "é" * 33, 5, None):
        try:
            answer = api.cache.set(key, "v")
        except (ApiError, TypeError, ValueError):
            continue
        if answer.type != "error":
            accepted.append(key)
    if accepted:
        return "ESCAPED accepted cache keys " + repr(accepted)
    return "denied"
