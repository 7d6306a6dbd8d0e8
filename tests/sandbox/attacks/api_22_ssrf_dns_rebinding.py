# attack: DNS rebinding: rebind.example answers a public address first and 127.0.0.1 afterwards; hope the connection, a redirect hop or a second call lands on loopback
# expect: ok
# dial: 93.184.216.34 rebind.example
def on_execute_send_phone_message(event, api):
    reached = []
    try:
        response = api.http.get("https://rebind.example/redirect-to-self")
        reached.append("redirect hop: " + str(response.status) + " " + response.text)
    except ApiError:
        pass
    try:
        response = api.http.get("https://rebind.example/")
        reached.append("second call: " + str(response.status) + " " + response.text)
    except ApiError:
        pass
    if reached:
        return "ESCAPED after rebinding " + "; ".join(reached)
    return "denied"
