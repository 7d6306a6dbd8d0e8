# attack: an exception's __traceback__.tb_frame.f_back.f_globals walks up into the executor's frame
# expect: compile_error
def on_execute_send_phone_message(event, api):
    try:
        1 / 0
    except ZeroDivisionError as exc:
        frame = exc.__traceback__.tb_frame.f_back
        return "ESCAPED " + str(frame.f_globals)
