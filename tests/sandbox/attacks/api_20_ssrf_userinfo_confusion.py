# attack: userinfo a@b confusion and parser differentials: public@127.0.0.1, backslashes, encoded @, fragments and brackets around the authority
# expect: ok
def first_reached(api, urls):
    """The first URL the sandbox fetched, or None if every one was refused."""
    for url in urls:
        try:
            response = api.http.get(url)
        except ApiError:
            continue
        return url + " -> " + str(response.status) + " " + response.text[:40]
    return None


def on_execute_send_phone_message(event, api):
    port = str(event.fake.port)
    urls = [
        "https://public.example@127.0.0.1/",
        "http://public.example@127.0.0.1:" + port + "/ok",
        "http://user:pass@127.0.0.1:" + port + "/ok",
        "https://public.example\\@127.0.0.1/",
        "https://public.example%40127.0.0.1/",
        "https://public.example:443@10.0.0.1/",
        "https://[public.example@127.0.0.1]/",
        "https://127.0.0.1\\@public.example/",
        "https:/\\127.0.0.1/",
        "https:\\\\127.0.0.1/",
    ]
    reached = first_reached(api, urls)
    if reached:
        return "ESCAPED SSRF reached " + reached
    return "denied"
