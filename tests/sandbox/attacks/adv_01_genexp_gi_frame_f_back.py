# attack: CVE-2023-37271 (GHSA-wqc8-x2pr-7jqh): walk a generator expression's gi_frame.f_back chain up to a host frame and take its builtins
# expect: compile_error
def on_execute_send_phone_message(event, api):
    gen = (x for x in [1])
    frame = gen.gi_frame.f_back.f_back
    importer = frame.f_builtins["__import__"]
    return "ESCAPED " + str(importer("os").getpid())
