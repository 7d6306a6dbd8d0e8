# attack: print(..., file=...) to write somewhere other than the sandbox's sink
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    print('ESCAPED to a file', file=api)
    return 'printed'
