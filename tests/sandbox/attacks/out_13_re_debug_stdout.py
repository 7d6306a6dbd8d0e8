# attack: re.DEBUG (flag 128) makes the regex compiler print to the process's stdout, bypassing the print sink
# expect: runtime_error
# (the re facade takes only re.I, re.M, re.S, re.X and re.A: the flag is refused)
import re


def on_execute_send_phone_message(event, api):
    pattern = re.compile('(a|b)*c' * 50, 128)
    return pattern.pattern[:10]
