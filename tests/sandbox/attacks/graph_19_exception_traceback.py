# attack: the __traceback__ of an error raised inside a facade function leads to host frames
# expect: compile_error
import json


def on_execute_send_phone_message(event, api):
    try:
        json.loads("{oops")
    except ValueError as exc:
        return "ESCAPED " + str(exc.__traceback__.tb_next.tb_frame.f_globals)
