# attack: an async generator's ag_frame/ag_code (denied since RP 8.5) and async for
# expect: compile_error
async def agen():
    yield 1


def on_execute_send_phone_message(event, api):
    gen = agen()
    return "ESCAPED " + str(gen.ag_frame)
