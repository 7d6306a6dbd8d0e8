# attack: swallow the error of an HTTP call that outlives the budget, then keep running past the deadline
# expect: timeout
def on_execute_send_phone_message(event, api):
    try:
        api.http.get(event.fake.base + "/slow", timeout=60)
    except:
        pass
    while True:
        pass
