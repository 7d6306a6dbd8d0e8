# attack: response bombs: a 3 MiB body with content-length, an endless body without it, and a gzip bomb (16 MiB of zeros)
# expect: ok
def on_execute_send_phone_message(event, api):
    delivered = []
    for path in ("/big", "/big-stream", "/gzip-bomb"):
        try:
            response = api.http.get(event.fake.base + path)
        except ApiError:
            continue
        delivered.append(path + " " + str(len(response.text)))
    if delivered:
        return "ESCAPED oversize responses delivered: " + ", ".join(delivered)
    return "denied"
