# attack: a non-JSON float (NaN/Infinity) in the result, which strict JSON parsers in the host would choke on
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    return {"n": float("nan"), "i": float("inf")}
