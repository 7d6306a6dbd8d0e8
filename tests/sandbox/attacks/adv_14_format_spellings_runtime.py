# attack: every runtime spelling of str.format/format_map (instance, class, bound method kept in a variable, via map, builtin format) to read attributes in C
# expect: ok
def on_execute_send_phone_message(event, api):
    template = "{0.get.__self__}"
    attempts = []
    try:
        attempts.append(template.format(event))
    except AttributeError:
        pass
    try:
        attempts.append(template.format_map([event]))
    except AttributeError:
        pass
    try:
        attempts.append(str.format(template, event))
    except AttributeError:
        pass
    try:
        bound = "{0}".format
        attempts.append(bound(event))
    except AttributeError:
        pass
    try:
        attempts.append(list(map(str.format_map, [template], [[event]])))
    except AttributeError:
        pass
    try:
        attempts.append(format(event, ""))
    except NameError:
        pass
    if attempts:
        return "ESCAPED " + str(attempts)
    return "denied"
