# attack: fill this tenant's cache far past its quota, hoping eviction or accounting spills into another tenant's namespace
# expect: ok
# cross-tenant: yes
def on_execute_send_phone_message(event, api):
    refused = 0
    for i in range(60):
        try:
            api.cache.set("fill-" + str(i), "x" * 4000)
        except ApiError:
            refused += 1
    try:
        api.cache.set("too-big", "x" * 5000)
        return "ESCAPED a 5000-byte value was stored"
    except ApiError:
        pass
    return "denied"
