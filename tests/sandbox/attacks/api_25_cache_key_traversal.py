# attack: cache keys with path traversal, separators, wildcards, control characters, unicode look-alikes and over-long names
# expect: ok
def on_execute_send_phone_message(event, api):
    accepted = []
    for key in ("../x", "a/b", "a b", "*", "?", "a\x00b", "a\nb", "ａ", "", "k" * 65, "key\u202e", "$(id)", "{x}"):
        try:
            api.cache.set(key, "v")
            accepted.append(key)
        except (ApiError, TypeError, ValueError):
            pass
    if accepted:
        return "ESCAPED accepted cache keys " + repr(accepted)
    return "denied"
