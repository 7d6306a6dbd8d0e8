# attack: drive a generator by hand (send/throw/gi_running/gi_suspended) looking for an unguarded entry point
# expect: runtime_error
def numbers():
    yield 1
    yield 2


def on_execute_send_phone_message(event, api):
    gen = numbers()
    gen.send(None)
    return "ESCAPED " + str(gen.gi_running)
