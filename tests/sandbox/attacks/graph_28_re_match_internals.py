# attack: objects handed out by the re facade: Match.re, Pattern.scanner, Match.regs, Pattern.groupindex, a callable repl receiving Match objects
# expect: ok
import re


def on_execute_send_phone_message(event, api):
    found = []
    match = re.match("(a)(b)?", "ab")
    pattern = match.re
    try:
        found.append(pattern.scanner("ab"))
    except AttributeError:
        pass
    try:
        found.append(match.regs)
    except AttributeError:
        pass
    try:
        found.append(pattern.groupindex)
    except AttributeError:
        pass
    seen = []
    re.sub("a", lambda m: seen.append(m) or "x", "aaa")
    for m in seen:
        try:
            found.append(m.re.scanner)
        except AttributeError:
            pass
    if pattern.sub("z", "abab") != "zz":
        found.append("sub misbehaved")
    if found:
        return "ESCAPED " + repr(found)
    return "denied"
