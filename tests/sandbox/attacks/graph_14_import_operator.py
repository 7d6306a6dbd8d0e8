# attack: import operator for attrgetter/methodcaller (getattr in library code)
# expect: runtime_error
import operator


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(operator.attrgetter("get.__self__")(event))
