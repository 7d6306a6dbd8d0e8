# attack: CVE-2026-55830 (remaining guards): positional-only parameters named _getitem_, _getiter_, _print_ and _inplacevar_
# expect: compile_error
def hijack(data, _getitem_=None, _getiter_=None, _print_=None, _inplacevar_=None, /):
    total = 0
    for item in data:
        total += item
    return data[0]


def on_execute_send_phone_message(event, api):
    return hijack([1, 2])
