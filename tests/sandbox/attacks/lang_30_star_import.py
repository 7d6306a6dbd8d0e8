# attack: star import copies every public name of a module, unguarded
# expect: compile_error
from json import *


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(codecs)
