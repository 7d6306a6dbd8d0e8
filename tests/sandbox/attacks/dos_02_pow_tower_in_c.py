# attack: 10**10**8: one bytecode that computes in C for a long time and never returns to Python (only RLIMIT_CPU or the wall clock stop it)
# expect: timeout
def on_execute_send_phone_message(event, api):
    return 10 ** 10 ** 8
