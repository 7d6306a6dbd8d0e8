# attack: rebind a guard hook for the whole module with a global statement
# expect: compile_error
def install():
    global _getattr_
    _getattr_ = lambda obj, name: "ESCAPED"


def on_execute_send_phone_message(event, api):
    install()
    return event.anything
