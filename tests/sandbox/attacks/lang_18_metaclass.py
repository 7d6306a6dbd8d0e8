# attack: a metaclass whose __new__/__call__ runs at class creation with the real type machinery
# expect: compile_error
class Meta(type):
    def __call__(cls, *args):
        return "ESCAPED " + str(type.__subclasses__(type))


class Thing(metaclass=Meta):
    pass


def on_execute_send_phone_message(event, api):
    return Thing()
