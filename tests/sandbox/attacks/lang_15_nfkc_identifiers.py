# attack: NFKC-normalised identifiers (PEP 3131): fullwidth letters spelling gi_frame/f_back, and a fullwidth low line inside a dunder
# expect: compile_error
def on_execute_send_phone_message(event, api):
    gen = (x for x in [1])
    frame = gen.ｇｉ_ｆｒａｍｅ.ｆ_ｂａｃｋ
    cls = event._＿class＿＿
    return "ESCAPED " + str(frame) + str(cls)
