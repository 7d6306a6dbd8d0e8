# attack: drive the worker to its memory limit, survive the MemoryError, return ok and hope the reused worker is crippled for the next invocation; run twice
# expect: ok
# repeat: 2
def on_execute_send_phone_message(event, api):
    chunks = []
    try:
        while True:
            chunks.append("x" * (10 ** 7))
    except Exception:
        pass
    size = len(chunks)
    chunks = None
    return "survived at " + str(size) + " chunks"
