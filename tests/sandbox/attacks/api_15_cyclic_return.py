# attack: a cyclic return value, to hang or crash the host's serialisation
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    loop = {"a": []}
    loop["a"].append(loop)
    return loop
