# attack: match/case class patterns read attributes in C (case object(__class__=c)), bypassing _getattr_
# expect: compile_error
def on_execute_send_phone_message(event, api):
    match event:
        case object(__class__=cls):
            return "ESCAPED " + str(cls)
    return "no match"
