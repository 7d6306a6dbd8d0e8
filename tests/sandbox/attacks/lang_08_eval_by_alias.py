# attack: dodge the compile-time exec/eval call check by calling them through another name
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    run = eval
    return "ESCAPED " + str(run("1 + 1"))
