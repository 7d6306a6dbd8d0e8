# attack: regex with a repetition count past the engine's limit (a{4294967296})
# expect: runtime_error
import re


def on_execute_send_phone_message(event, api):
    return re.compile('a{4294967296}').pattern
