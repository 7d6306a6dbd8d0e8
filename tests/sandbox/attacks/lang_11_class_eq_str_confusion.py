# attack: an object that equals every string and claims to be a str (__eq__/__hash__), to confuse host-side checks such as "x == 'https'" or "key in allowed"
# expect: compile_error
class Anything:
    def __eq__(self, other):
        return True

    def __hash__(self):
        return hash("https")


def on_execute_send_phone_message(event, api):
    return api.http.get(Anything())
