# attack: guard names as *args/**kwargs, keyword-only and lambda parameters
# expect: compile_error
def helper(*_getiter_, _getitem_=None, **_getattr_):
    return (lambda _write_: _write_)(1)


def on_execute_send_phone_message(event, api):
    return helper()
