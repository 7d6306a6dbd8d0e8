# attack: raise the BaseException family the worker loop might not catch (KeyboardInterrupt, GeneratorExit, StopIteration out of a generator), and catch them back
# expect: ok
def gen():
    yield 1
    raise StopIteration("inside")


def on_execute_send_phone_message(event, api):
    found = []
    try:
        found.append(KeyboardInterrupt)
    except NameError:
        pass
    try:
        found.append(GeneratorExit)
    except NameError:
        pass
    try:
        for item in gen():
            pass
    except RuntimeError:
        pass
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
