# attack: CVE-2026-55830 (getattr variant): a positional-only parameter named _getattr_ turns every attribute read in the function into a plain getattr
# expect: compile_error
def peek(obj, name, _getattr_=lambda o, n: "ESCAPED", /):
    return obj.anything


def on_execute_send_phone_message(event, api):
    return peek(event, "x")
