# attack: probe every reflective or I/O builtin the sandbox should not offer (open, getattr, type, object, globals, vars, id, iter, next, compile, SystemExit, ...; breakpoint is a reserved name at compile time)
# expect: ok
def on_execute_send_phone_message(event, api):
    found = []
    try:
        found.append(open)
    except NameError:
        pass
    try:
        found.append(getattr)
    except NameError:
        pass
    try:
        found.append(setattr)
    except NameError:
        pass
    try:
        found.append(delattr)
    except NameError:
        pass
    try:
        found.append(hasattr)
    except NameError:
        pass
    try:
        found.append(globals)
    except NameError:
        pass
    try:
        found.append(locals)
    except NameError:
        pass
    try:
        found.append(vars)
    except NameError:
        pass
    try:
        found.append(dir)
    except NameError:
        pass
    try:
        found.append(type)
    except NameError:
        pass
    try:
        found.append(object)
    except NameError:
        pass
    try:
        found.append(super)
    except NameError:
        pass
    try:
        found.append(issubclass)
    except NameError:
        pass
    try:
        found.append(id)
    except NameError:
        pass
    try:
        found.append(hash)
    except NameError:
        pass
    try:
        found.append(iter)
    except NameError:
        pass
    try:
        found.append(next)
    except NameError:
        pass
    try:
        found.append(compile)
    except NameError:
        pass
    try:
        found.append(input)
    except NameError:
        pass
    try:
        found.append(help)
    except NameError:
        pass
    try:
        found.append(format)
    except NameError:
        pass
    try:
        found.append(memoryview)
    except NameError:
        pass
    try:
        found.append(bytearray)
    except NameError:
        pass
    try:
        found.append(complex)
    except NameError:
        pass
    try:
        found.append(classmethod)
    except NameError:
        pass
    try:
        found.append(staticmethod)
    except NameError:
        pass
    try:
        found.append(property)
    except NameError:
        pass
    try:
        found.append(exit)
    except NameError:
        pass
    try:
        found.append(quit)
    except NameError:
        pass
    try:
        found.append(license)
    except NameError:
        pass
    try:
        found.append(BaseException)
    except NameError:
        pass
    try:
        found.append(SystemExit)
    except NameError:
        pass
    try:
        found.append(KeyboardInterrupt)
    except NameError:
        pass
    try:
        found.append(GeneratorExit)
    except NameError:
        pass
    try:
        found.append(MemoryError)
    except NameError:
        pass
    if found:
        return "ESCAPED builtins offered: " + repr(found)
    return "denied"
