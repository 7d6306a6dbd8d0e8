# attack: catastrophic regex backtracking (a+)+$ on 'a'*40+'b': runs in C, never checks signals
# expect: timeout
import re


def on_execute_send_phone_message(event, api):
    return re.match('(a+)+$', 'a' * 40 + 'b')
