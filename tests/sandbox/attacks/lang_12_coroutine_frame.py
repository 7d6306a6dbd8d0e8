# attack: a coroutine's cr_frame.f_back and cr_code, the async counterpart of the generator-frame escape
# expect: compile_error
async def probe():
    return 1


def on_execute_send_phone_message(event, api):
    coro = probe()
    return "ESCAPED " + str(coro.cr_frame.f_back.f_globals)
