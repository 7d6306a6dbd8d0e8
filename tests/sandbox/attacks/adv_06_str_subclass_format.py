# attack: CVE-2023-41039 (subclass variant): a str subclass whose format is inherited from str escapes a guard keyed on the exact type
# expect: compile_error
class Template(str):
    pass


def on_execute_send_phone_message(event, api):
    leaked = Template("{0.__class__.__base__.__subclasses__}").format(event)
    return "ESCAPED " + leaked
