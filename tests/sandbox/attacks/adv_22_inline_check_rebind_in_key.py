# attack: rebind the subscripted name, or the in-place target, to a facade or event data between the inline exact-type check and its use (walrus in the key or value, a global rebound by a call in the key)
# expect: ok
GUARD = "objects cannot be subscripted in actions"
target = [1, 2]


def swap():
    global target
    target = api_log
    return 0


api_log = None


def on_execute_send_phone_message(event, api):
    global api_log
    api_log = api.log
    seen = []
    a = [10, 20]
    seen.append(a[(a := api.log) and 1])  # checked list, subscripted list
    try:
        a[(a := [1, 2]) and 0]  # checked facade: the guard refuses
        return "ESCAPED facade subscripted"
    except TypeError as exc:
        if GUARD not in exc.args[0]:
            return "ESCAPED " + exc.args[0]
    o = event["message_options"]
    try:
        if o[(o := {"recipient": "swapped"}) and "recipient"] == "swapped":
            return "ESCAPED the key's rebinding was subscripted"
    except KeyError:
        pass  # event data without a recipient: still event data's own answer
    seen.append(target[swap()])  # the global is rebound inside the key
    try:
        target[0]
        return "ESCAPED facade subscripted after swap"
    except TypeError as exc:
        if GUARD not in exc.args[0]:
            return "ESCAPED " + exc.args[0]
    n = 1
    n += (n := api.log) and 1  # checked int, added to the int
    seen.append(n)
    m = api.log
    try:
        m += (m := 1)
        return "ESCAPED in-place on a facade"
    except TypeError as exc:
        if "+= is not allowed on Facade" not in exc.args[0]:
            return "ESCAPED " + exc.args[0]
    if seen != [20, 1, 2]:
        return "ESCAPED unexpected values " + str(seen)
    return "denied"
