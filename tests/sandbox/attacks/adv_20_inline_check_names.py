# attack: shadow the compiler's hidden inline-check globals (_type_, _subscript_types_, _inplace_types_) with positional-only parameters
# expect: compile_error
def hijack(data, _type_=None, _subscript_types_=None, _inplace_types_=None, /):
    total = 0
    total += data[0]
    return total


def on_execute_send_phone_message(event, api):
    return hijack([1, 2])
