# attack: fill this tenant's cache far past its quota, hoping eviction or accounting spills into another tenant's namespace
# expect: ok
# cross-tenant: yes
def on_execute_send_phone_message(event, api):
    for i in range(60):
        try:
            api.cache.set("fill-" + str(i), "x" * 4000)
        except ApiError:
            pass
    try:
        answer = api.cache.set("too-big", "x" * 5000)
    except ApiError:
        return "denied"
    if answer.type != "error" or api.cache.get("too-big") is not None:
        return "ESCAPED a 5000-byte value was stored"
    return "denied"
