# attack: CVE-2023-37271 (RP PoC): a generator function's gi_frame.f_back.f_globals reaches the executor's module globals
# expect: compile_error
def numbers():
    yield 1


def on_execute_send_phone_message(event, api):
    gen = numbers()
    host = gen.gi_frame.f_back.f_globals
    return "ESCAPED " + str(list(host.keys()))
