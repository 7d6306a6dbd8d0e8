# attack: C stack overflow from pure Python: hashing a 10**6-deep nested tuple recurses in C with no recursion guard (segfault on CPython 3.11)
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    nested = ()
    for i in range(10 ** 6):
        nested = (nested,)
    return len({nested: 1})
