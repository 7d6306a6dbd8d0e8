# attack: read everything but args from exceptions the sandbox raises (ApiError from the supervisor, JSONDecodeError, KeyError, AttributeError): .obj .name .request .response .with_traceback .add_note
# expect: ok
import json


def check(exc, found):
    try:
        found.append(exc.obj)
    except AttributeError:
        pass
    try:
        found.append(exc.name)
    except AttributeError:
        pass
    try:
        found.append(exc.request)
    except AttributeError:
        pass
    try:
        found.append(exc.response)
    except AttributeError:
        pass
    try:
        found.append(exc.with_traceback)
    except AttributeError:
        pass
    try:
        found.append(exc.add_note)
    except AttributeError:
        pass
    for arg in exc.args:
        if not isinstance(arg, (str, int)):
            found.append(arg)


def on_execute_send_phone_message(event, api):
    found = []
    try:
        api.cache.get("bad key with spaces")
    except ApiError as exc:
        check(exc, found)
    try:
        api.http.get("https://internal.example/")
    except ApiError as exc:
        check(exc, found)
    try:
        json.loads("{oops")
    except ValueError as exc:
        check(exc, found)
        if exc.doc != "{oops":
            found.append(exc.doc)
    try:
        event.no_such_field
    except AttributeError as exc:
        check(exc, found)
    try:
        event["no_such_field"]
    except KeyError as exc:
        check(exc, found)
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
