#!/usr/bin/env python3
# vim: set fileencoding=cp1252 :
# attack: a coding cookie on line 2 (after a shebang, as PEP 263 allows) naming cp1252 for a source that is valid UTF-8, so two readers could see different text
# expect: compile_error
def on_execute_send_phone_message(event, api):
    return "ESCAPED if this ran as cp1252: Ã©"
