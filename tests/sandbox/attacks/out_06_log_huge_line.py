# attack: one 10 MB api.log line, plus control and ANSI characters to forge log structure
# expect: ok
def on_execute_send_phone_message(event, api):
    api.log.info('x' * (10 ** 7))
    api.log.warning('fake\n[error] forged line\x1b[2J\r')
    return 'logged'
