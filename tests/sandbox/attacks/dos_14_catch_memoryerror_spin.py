# attack: exhaust memory, catch the MemoryError with a bare except, then spin forever
# expect: timeout
def on_execute_send_phone_message(event, api):
    try:
        chunks = []
        while True:
            chunks.append('x' * (10 ** 7))
    except:
        chunks = None
        while True:
            pass
