# attack: import the C accelerators and private modules behind the facades (_json, _sre, _io, _thread, _string, __main__)
# expect: compile_error
import _json as scanner
import _sre as engine
from _io import open as raw_open
from __main__ import on_execute_send_phone_message as me


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(raw_open("/etc/hostname").read())
