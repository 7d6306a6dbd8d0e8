# attack: a response declaring charset=punycode (450 kB body): the supervisor decodes it with a quadratic codec on its event loop, stalling every tenant's invocations and deadlines
# expect: ok
def on_execute_send_phone_message(event, api):
    try:
        response = api.http.get(event.fake.base + "/punycode")
    except ApiError:
        return "refused"
    return "decoded " + str(len(response.text)) + " characters"
