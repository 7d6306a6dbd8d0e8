# attack: reseed the (shared) random module, then check whether the next invocation's randomness follows the seed; run twice
# expect: ok
# repeat: 2
import random


def on_execute_send_phone_message(event, api):
    seeded = False
    try:
        random.seed(1234)
        seeded = True
    except AttributeError:
        pass
    try:
        random.Random(1234)
        seeded = True
    except AttributeError:
        pass
    draw = repr([random.random() for i in range(4)])
    before = api.cache.get("draw")
    api.cache.set("draw", draw)
    if seeded:
        return "ESCAPED reseeded the generator"
    if before is not None and before.value == draw:
        return "ESCAPED the same random sequence as the previous invocation: " + draw
    return "denied"
