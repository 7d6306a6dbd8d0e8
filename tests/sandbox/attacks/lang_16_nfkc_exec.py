# attack: NFKC normalisation of a call name: fullwidth ｅｘｅｃ/ｅｖａｌ, hoping the exec/eval check compares raw text
# expect: compile_error
def on_execute_send_phone_message(event, api):
    ｅｘｅｃ("import os")
    return "ESCAPED " + str(ｅｖａｌ("1"))
