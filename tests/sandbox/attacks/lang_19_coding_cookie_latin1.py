# -*- coding: latin-1 -*-
# attack: non-UTF-8 coding cookie (PEP 263): latin-1 source, so the policy and the compiler could read different text
# expect: compile_error
def on_execute_send_phone_message(event, api):
    café = 'ESCAPED é'
    return café
