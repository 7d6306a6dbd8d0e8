# attack: a host exception chained into an ApiError's __context__/__cause__ carries host frames and objects
# expect: compile_error
def on_execute_send_phone_message(event, api):
    try:
        api.cache.get("bad key with spaces")
    except ApiError as exc:
        host = exc.__context__ or exc.__cause__
        return "ESCAPED " + str(host.__traceback__)
