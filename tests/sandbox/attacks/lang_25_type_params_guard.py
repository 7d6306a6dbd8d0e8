# attack: PEP 695 type parameters named like guards (def f[_getattr_]) create a new scope binding; also a type alias
# expect: compile_error
def peek[_getattr_](obj):
    return obj.anything


type Alias[_write_] = list[_write_]


def on_execute_send_phone_message(event, api):
    return peek(event)
