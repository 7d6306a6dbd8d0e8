# attack: decorator trick @eval @str: decorators are Name nodes, not Call nodes, so the exec/eval call check never fires
# expect: runtime_error
@eval
@str
def payload():
    pass


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(payload)
