# attack: RP 7.2 fix (tests/test_Guards.py PoC): an attribute name given as a str subclass whose startswith lies to the guard
# expect: compile_error
class Name(str):
    def startswith(self, prefix):
        return False


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(getattr(event, Name("_data")))
