# attack: class attributes of allowed types beyond their allowlists (int.bit_length on the class, dict.keys, datetime.now.self, timezone.utc.dst, str.mro)
# expect: ok
import datetime


def on_execute_send_phone_message(event, api):
    found = []
    try:
        found.append(int.bit_length)
    except AttributeError:
        pass
    try:
        found.append(dict.keys)
    except AttributeError:
        pass
    try:
        found.append(str.join)
    except AttributeError:
        pass
    try:
        found.append(datetime.datetime.now.self)
    except AttributeError:
        pass
    try:
        found.append(datetime.datetime.fromisoformat.func)
    except AttributeError:
        pass
    try:
        found.append(datetime.timezone.register)
    except AttributeError:
        pass
    try:
        found.append(float.hex)
    except AttributeError:
        pass
    try:
        found.append(ValueError.mro)
    except AttributeError:
        pass
    try:
        found.append(ApiError.args)
    except AttributeError:
        pass
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
