# attack: run the worker out of memory while an api.http answer (900 kB) is being received, catch the MemoryError, and keep calling the api: the worker's RPC link may lose its place, so later calls (and the next invocation in the reused worker) get another call's answer or none; run twice (now: the worker ends when a reply cannot be read whole, so the outcome is memory_limit)
# expect: memory_limit
# repeat: 2
def on_execute_send_phone_message(event, api):
    first = api.cache.get("marker")
    if first is not None and first.get("value") != "cache record":
        return "ESCAPED cache.get answered with another call's reply: " + repr(first.keys())
    api.cache.set("marker", "cache record")
    hog = []
    try:
        while True:
            hog.append("x" * (1 << 20))
    except Exception:
        pass
    try:
        while True:
            hog.append("s" * 4000)
    except Exception:
        pass
    memory_errors = 0
    while hog and memory_errors < 3:
        hog.pop()
        try:
            api.http.get(event.fake.base + "/large-ok")
        except ApiError:
            continue
        except Exception:
            memory_errors += 1
    hog = None
    for i in range(3):
        try:
            record = api.cache.get("marker")
        except ApiError:
            continue
        if record is None or record.get("value") != "cache record":
            return "ESCAPED cache.get answered with another call's reply: " + repr(record)[:120]
    return "denied after " + str(memory_errors) + " memory errors"
