# attack: id()/hash() as address leaks and memory-corruption primitives (how2python)
# expect: runtime_error
import json


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + str(id(event) + hash(json))
