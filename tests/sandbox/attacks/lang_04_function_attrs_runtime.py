# attack: old (Python 2) and non-dunder spellings of function internals: func_globals, func_code, func_closure
# expect: runtime_error
def helper():
    return 1


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(helper.func_globals)
