# attack: write to the worker's real stdout/stderr through sys
# expect: runtime_error
import sys


def on_execute_send_phone_message(event, api):
    sys.stdout.write('ESCAPED to stdout')
    return 'written'
