# attack: a response declaring charset=undefined (a registered codec that always fails): the supervisor's decoding raises something other than a refusal
# expect: ok
def on_execute_send_phone_message(event, api):
    try:
        response = api.http.get(event.fake.base + "/undefined-charset")
    except ApiError as exc:
        return "refused: " + exc.args[0]
    return "decoded " + str(len(response.text)) + " characters"
